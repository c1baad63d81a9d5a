// The Node-API surface of secbeat_native: argument checks, the SpliceEngine object wrapper, the
// thread-safe function that carries closed-connection batches to JS, and errno -> JS error mapping.
// The engine itself (splice.cc) knows nothing about Node. Typed for TS in src/native/binding.ts.
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "splice.h"

namespace {

// Largest integer a JS number holds exactly (Number.MAX_SAFE_INTEGER): connection ids beyond it
// would not round-trip through the closed events.
constexpr double SB_MAX_SAFE_INTEGER = 9007199254740991.0;

// Default F_SETPIPE_SZ request; chosen by bench/tcp/splice-throughput.ts (see docs/native.md).
constexpr double SB_DEFAULT_PIPE_SIZE_BYTES = 256 * 1024;

// A JS Error shaped like Node's system errors (code = errno name, errno, syscall), so callers can
// branch on err.code the same way as for errors from node:net.
Napi::Error sb_system_error(Napi::Env env, const sb_status& st) {
  std::string code = sb_errno_name(st.err);
  Napi::Error e = Napi::Error::New(env, std::string(st.what) + ": " + std::strerror(st.err) + " (" + code + ")");
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -st.err));
  if (st.is_syscall) e.Set("syscall", Napi::String::New(env, st.what));
  return e;
}

Napi::Error sb_coded_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

double sb_integer_arg(const Napi::CallbackInfo& info, size_t i, const char* name, double min, double max) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::trunc(v) != v || v < min || v > max) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in [" +
                                                std::to_string(static_cast<int64_t>(min)) + ", " +
                                                std::to_string(static_cast<int64_t>(max)) + "]");
  }
  return v;
}

class sb_splice_engine_wrap : public Napi::ObjectWrap<sb_splice_engine_wrap> {
  // Delivers one batch of closed events, on the JS thread. (Defined first: tsfn_t below names it as a
  // template argument.) env is null when Node drains the queue while finalizing the thread-safe
  // function at environment teardown; then only the batch is freed, since self may already be gone.
  static void call_js(Napi::Env env, Napi::Function callback, sb_splice_engine_wrap* self,
                      std::vector<sb_closed_event>* batch) {
    std::unique_ptr<std::vector<sb_closed_event>> owned(batch);
    if (env == nullptr || callback.IsEmpty()) return;
    for (const sb_closed_event& e : *batch) self->live_.erase(e.id);
    try {
      if (self->live_.empty() && self->referenced_) {
        self->referenced_ = false;
        self->tsfn_.Unref(env);
        self->Unref();
      }
      Napi::Array events = Napi::Array::New(env, batch->size());
      uint32_t i = 0;
      for (const sb_closed_event& e : *batch) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", Napi::Number::New(env, static_cast<double>(e.id)));
        // Exact up to 2^53 bytes (8 PiB) per direction, far beyond any connection's life.
        o.Set("bytesAtoB", Napi::Number::New(env, static_cast<double>(e.bytes_a_to_b)));
        o.Set("bytesBtoA", Napi::Number::New(env, static_cast<double>(e.bytes_b_to_a)));
        o.Set("reason", Napi::String::New(env, e.reason));
        events.Set(i++, o);
      }
      callback.Call({events});
    } catch (const Napi::Error& e) {
      // Either onClosed threw, or the environment is being torn down (a terminated worker still
      // dispatches queued calls) and JS cannot run. napi_fatal_exception raises 'uncaughtException' as
      // for any callback (a plain rethrow from a thread-safe call is only a deprecation warning in Node
      // 24 for Node-API < 10 addons); the raw C call ignores its own failure, because a C++ exception
      // must never unwind into Node's dispatcher (std::terminate) and in teardown nobody is left to tell.
      if (!e.Value().IsEmpty()) napi_fatal_exception(env, e.Value());
    }
  }

  using tsfn_t = Napi::TypedThreadSafeFunction<sb_splice_engine_wrap, std::vector<sb_closed_event>,
                                               &sb_splice_engine_wrap::call_js>;

 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "SpliceEngine",
                       {
                           InstanceMethod<&sb_splice_engine_wrap::add>("add"),
                           InstanceMethod<&sb_splice_engine_wrap::remove>("remove"),
                           InstanceMethod<&sb_splice_engine_wrap::stats>("stats"),
                           InstanceMethod<&sb_splice_engine_wrap::close>("close"),
                       });
  }

  explicit sb_splice_engine_wrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<sb_splice_engine_wrap>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall()) throw Napi::TypeError::New(env, "SpliceEngine must be called with new");
    if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "onClosed must be a function");
    double pipe_size = SB_DEFAULT_PIPE_SIZE_BYTES;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
      Napi::Value v = info[1].As<Napi::Object>().Get("pipeSizeBytes");
      if (!v.IsUndefined()) {
        if (!v.IsNumber()) throw Napi::TypeError::New(env, "options.pipeSizeBytes must be a number");
        pipe_size = v.As<Napi::Number>().DoubleValue();
        // 0 keeps the kernel default; the kernel's own cap is /proc/sys/fs/pipe-max-size.
        if (!std::isfinite(pipe_size) || std::trunc(pipe_size) != pipe_size || pipe_size < 0 ||
            pipe_size > 1024.0 * 1024 * 1024) {
          throw Napi::RangeError::New(env, "options.pipeSizeBytes must be an integer in [0, 2^30]");
        }
      }
    }

    // Unlimited queue (0) so the engine thread never blocks on JS: a batch is one allocation per
    // epoll turn, bounded by the number of connections that can close in one turn.
    tsfn_ = tsfn_t::New(env, info[0].As<Napi::Function>(), "secbeat.splice", 0, 1, this);
    // An idle engine must not keep the event loop (or a worker) alive; add() refs it while the engine
    // owns connections, because paused sockets no longer do.
    tsfn_.Unref(env);

    engine_ = std::make_unique<sb_splice_engine>(
        [this](std::vector<sb_closed_event>&& batch) {
          auto* data = new std::vector<sb_closed_event>(std::move(batch));
          // napi_closing during environment teardown: nobody is left to tell.
          if (tsfn_.NonBlockingCall(data) != napi_ok) delete data;
        },
        static_cast<size_t>(pipe_size));
    sb_status st = engine_->start();
    if (!st.ok()) {
      engine_.reset();
      tsfn_.Release();
      throw sb_system_error(env, st);
    }

    // Registered after the thread-safe function on purpose: cleanup hooks run in reverse order, so
    // this one joins the engine thread before Node finalizes the thread-safe function the thread
    // calls into. It is what lets a terminated worker leave no native thread behind.
    env_ = env;
    napi_status s = napi_add_env_cleanup_hook(env, &sb_splice_engine_wrap::on_env_cleanup, this);
    if (s != napi_ok) {
      shutdown();
      throw Napi::Error::New(env, "napi_add_env_cleanup_hook failed");
    }
    hook_added_ = true;
  }

  ~sb_splice_engine_wrap() override { shutdown(); }

 private:
  // add(id, fdA, fdB, idleTimeoutMs): void
  Napi::Value add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t id = static_cast<int64_t>(sb_integer_arg(info, 0, "id", 0, SB_MAX_SAFE_INTEGER));
    int fd_a = static_cast<int>(sb_integer_arg(info, 1, "fdA", 0, INT32_MAX));
    int fd_b = static_cast<int>(sb_integer_arg(info, 2, "fdB", 0, INT32_MAX));
    uint32_t idle = static_cast<uint32_t>(sb_integer_arg(info, 3, "idleTimeoutMs", 0, INT32_MAX));
    if (closed_) throw sb_coded_error(env, "ERR_INVALID_STATE", "SpliceEngine is closed");
    if (live_.count(id) != 0) {
      throw sb_coded_error(env, "ERR_INVALID_ARG_VALUE",
                           "connection id " + std::to_string(id) + " is already owned by the engine");
    }
    sb_status st = engine_->add(id, fd_a, fd_b, idle);
    if (!st.ok()) throw sb_system_error(env, st);
    live_.insert(id);
    if (!referenced_) {
      // Keeps the loop alive for the closed events, and this object alive for call_js.
      referenced_ = true;
      tsfn_.Ref(env);
      Ref();
    }
    return env.Undefined();
  }

  // remove(id): boolean — true when a closed event for id is still to come.
  Napi::Value remove(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t id = static_cast<int64_t>(sb_integer_arg(info, 0, "id", 0, SB_MAX_SAFE_INTEGER));
    bool owned = live_.count(id) != 0;
    if (owned && !closed_) engine_->remove(id);
    return Napi::Boolean::New(env, owned);
  }

  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("connections", Napi::Number::New(env, static_cast<double>(live_.size())));
    o.Set("pipesPooled", Napi::Number::New(env, engine_ ? static_cast<double>(engine_->pipes_pooled()) : 0));
    o.Set("pipesInUse", Napi::Number::New(env, engine_ ? static_cast<double>(engine_->pipes_in_use()) : 0));
    return o;
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    shutdown();
    return info.Env().Undefined();
  }

  // Idempotent. Joins the engine thread (its last batch, the "removed" reports, is queued before the
  // join returns and delivered on a later turn), then lets the thread-safe function finalize.
  void shutdown() {
    if (closed_) return;
    closed_ = true;
    if (engine_) engine_->stop();
    tsfn_.Release();
    // Cleared by on_env_cleanup before it calls here, so the hook is removed only when it has not run
    // (close() from JS, or the object collected before teardown).
    if (hook_added_) {
      hook_added_ = false;
      napi_remove_env_cleanup_hook(env_, &sb_splice_engine_wrap::on_env_cleanup, this);
    }
  }

  static void on_env_cleanup(void* arg) {
    auto* self = static_cast<sb_splice_engine_wrap*>(arg);
    self->hook_added_ = false;
    self->shutdown();
  }

  tsfn_t tsfn_;
  std::unique_ptr<sb_splice_engine> engine_;
  std::unordered_set<int64_t> live_;  // ids added and not yet delivered in a closed batch (JS thread)
  napi_env env_ = nullptr;
  bool closed_ = false;
  bool hook_added_ = false;
  bool referenced_ = false;
};

Napi::Object sb_init(Napi::Env env, Napi::Object exports) {
  // Nothing static: each environment (main thread, every worker) gets its own class and engines,
  // which is what makes the addon safe to load in worker threads.
  exports.Set("SpliceEngine", sb_splice_engine_wrap::define(env));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

NODE_API_MODULE(secbeat_native, sb_init)
