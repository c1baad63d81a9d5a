// The Node-API surface of secbeat_native: argument checks, the TcpEngine object wrapper, the
// thread-safe function that carries accepted/closed batches to JS, and errno -> JS error mapping.
// The engine itself (tcp_engine.cc) knows nothing about Node. Typed for TS in src/native/binding.ts.
#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "tcp_engine.h"

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

// Reads options[key] as an integer in [min, max], or `fallback` when it is undefined.
double sb_integer_option(Napi::Object options, const char* key, double min, double max, double fallback) {
  Napi::Env env = options.Env();
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  std::string name = std::string("options.") + key;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < min || d > max) {
    throw Napi::RangeError::New(env, name + " must be an integer in [" + std::to_string(static_cast<int64_t>(min)) +
                                         ", " + std::to_string(static_cast<int64_t>(max)) + "]");
  }
  return d;
}

sb_address sb_address_option(Napi::Object options, const char* host_key, const char* port_key) {
  Napi::Env env = options.Env();
  Napi::Value host = options.Get(host_key);
  if (!host.IsString()) throw Napi::TypeError::New(env, std::string("options.") + host_key + " must be a string");
  if (options.Get(port_key).IsUndefined()) {
    throw Napi::TypeError::New(env, std::string("options.") + port_key + " must be a number");
  }
  uint16_t port = static_cast<uint16_t>(sb_integer_option(options, port_key, 0, 65535, 0));
  sb_address out;
  std::string text = host.As<Napi::String>().Utf8Value();
  if (!sb_parse_address(text, port, &out)) {
    throw Napi::TypeError::New(env, std::string("options.") + host_key + " must be a numeric IPv4 or IPv6 address, got \"" +
                                        text + "\"");
  }
  return out;
}

// Reads an array of connection ids.
std::vector<int64_t> sb_id_array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsArray()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an array of ids");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> ids;
  ids.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!std::isfinite(d) || std::trunc(d) != d || d < 1 || d > SB_MAX_SAFE_INTEGER) {
      throw Napi::TypeError::New(info.Env(), std::string(name) + "[" + std::to_string(k) + "] is not a connection id");
    }
    ids.push_back(static_cast<int64_t>(d));
  }
  return ids;
}

class sb_tcp_engine_wrap;

// How call_js reaches the wrapper. The thread-safe function can outlive it: once an engine neither listens
// nor owns connections (stopListening() or close()), JS may drop it and GC may destroy the wrapper while a
// batch is still queued. The destructor clears `self`; the wrapper and the thread-safe function's context
// share the link, so it lives as long as the later of the two. Touched on the JS thread only.
struct sb_js_link {
  sb_tcp_engine_wrap* self;
};

class sb_tcp_engine_wrap : public Napi::ObjectWrap<sb_tcp_engine_wrap> {
  // Delivers one batch, on the JS thread. (Defined first: tsfn_t below names it as a template
  // argument.) env is null when Node drains the queue while finalizing the thread-safe function at
  // environment teardown; then only the batch is freed, since self may already be gone.
  static void call_js(Napi::Env env, Napi::Function callback, std::shared_ptr<sb_js_link>* link, sb_event_batch* batch) {
    std::unique_ptr<sb_event_batch> owned(batch);
    if (env == nullptr || callback.IsEmpty() || (*link)->self == nullptr) return;
    sb_tcp_engine_wrap* self = (*link)->self;
    // Clients accepted just before close() were reset by the engine: nobody can judge them any more.
    if (self->closed_) batch->accepted.clear();
    for (const sb_accepted_event& e : batch->accepted) self->waiting_.insert(e.id);
    self->live_ -= std::min(self->live_, batch->closed.size());
    try {
      self->update_ref(env);
      Napi::Array accepted = Napi::Array::New(env, batch->accepted.size());
      uint32_t i = 0;
      for (const sb_accepted_event& e : batch->accepted) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", Napi::Number::New(env, static_cast<double>(e.id)));
        o.Set("ip", Napi::String::New(env, e.ip));
        o.Set("ipv6", Napi::Boolean::New(env, e.ipv6));
        accepted.Set(i++, o);
      }
      Napi::Array closed = Napi::Array::New(env, batch->closed.size());
      i = 0;
      for (const sb_closed_event& e : batch->closed) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", Napi::Number::New(env, static_cast<double>(e.id)));
        o.Set("ip", Napi::String::New(env, e.ip));
        // Exact up to 2^53 bytes (8 PiB) per direction, far beyond any connection's life.
        o.Set("bytesIn", Napi::Number::New(env, static_cast<double>(e.bytes_in)));
        o.Set("bytesOut", Napi::Number::New(env, static_cast<double>(e.bytes_out)));
        o.Set("connectMs", Napi::Number::New(env, static_cast<double>(e.connect_ms)));
        o.Set("durationMs", Napi::Number::New(env, static_cast<double>(e.duration_ms)));
        o.Set("reason", Napi::String::New(env, e.reason));
        closed.Set(i++, o);
      }
      callback.Call({accepted, closed});
    } catch (const Napi::Error& e) {
      // Either onEvents threw, or the environment is being torn down (a terminated worker still
      // dispatches queued calls) and JS cannot run. napi_fatal_exception raises 'uncaughtException' as
      // for any callback (a plain rethrow from a thread-safe call is only a deprecation warning in Node
      // 24 for Node-API < 10 addons); the raw C call ignores its own failure, because a C++ exception
      // must never unwind into Node's dispatcher (std::terminate) and in teardown nobody is left to tell.
      if (!e.Value().IsEmpty()) napi_fatal_exception(env, e.Value());
    }
  }

  using tsfn_t = Napi::TypedThreadSafeFunction<std::shared_ptr<sb_js_link>, sb_event_batch, &sb_tcp_engine_wrap::call_js>;

  static void release_link(Napi::Env, void*, std::shared_ptr<sb_js_link>* link) { delete link; }

 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "TcpEngine",
                       {
                           InstanceMethod<&sb_tcp_engine_wrap::listen>("listen"),
                           InstanceMethod<&sb_tcp_engine_wrap::stop_listening>("stopListening"),
                           InstanceMethod<&sb_tcp_engine_wrap::decide>("decide"),
                           InstanceMethod<&sb_tcp_engine_wrap::remove_all>("removeAll"),
                           InstanceMethod<&sb_tcp_engine_wrap::stats>("stats"),
                           InstanceMethod<&sb_tcp_engine_wrap::close>("close"),
                       });
  }

  explicit sb_tcp_engine_wrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<sb_tcp_engine_wrap>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall()) throw Napi::TypeError::New(env, "TcpEngine must be called with new");
    if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "onEvents must be a function");
    double pipe_size = SB_DEFAULT_PIPE_SIZE_BYTES;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
      // 0 keeps the kernel default; the kernel's own cap is /proc/sys/fs/pipe-max-size.
      pipe_size = sb_integer_option(info[1].As<Napi::Object>(), "pipeSizeBytes", 0, 1024.0 * 1024 * 1024, pipe_size);
    }

    // Unlimited queue (0) so the engine thread never blocks on JS: a batch is one allocation per
    // epoll turn, bounded by what can be accepted (SB_ACCEPT_BURST per wake-up) and closed in one turn.
    auto link = std::make_unique<std::shared_ptr<sb_js_link>>(link_);
    tsfn_ = tsfn_t::New(env, info[0].As<Napi::Function>(), "secbeat.tcp", 0, 1, link.get(), &release_link);
    link.release();  // the thread-safe function's finalizer owns it now
    // An idle engine must not keep the event loop (or a worker) alive; update_ref() refs it while it
    // listens or owns connections, as a listening net.Server or an open socket would.
    tsfn_.Unref(env);

    engine_ = std::make_unique<sb_tcp_engine>(
        [this](sb_event_batch&& batch) {
          auto* data = new sb_event_batch(std::move(batch));
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
    napi_status s = napi_add_env_cleanup_hook(env, &sb_tcp_engine_wrap::on_env_cleanup, this);
    if (s != napi_ok) {
      shutdown();
      throw Napi::Error::New(env, "napi_add_env_cleanup_hook failed");
    }
    hook_added_ = true;
  }

  ~sb_tcp_engine_wrap() override {
    link_->self = nullptr;
    shutdown();
  }

 private:
  void check_open(Napi::Env env) const {
    if (closed_) throw sb_coded_error(env, "ERR_INVALID_STATE", "TcpEngine is closed");
  }

  // listen({ host, port, backlog?, backendHost, backendPort, connectTimeoutMs?, idleTimeoutMs?,
  // noDelay? }): number — the bound port.
  Napi::Value listen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_open(env);
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    sb_listen_options options;
    options.listen = sb_address_option(o, "host", "port");
    options.backend = sb_address_option(o, "backendHost", "backendPort");
    options.backlog = static_cast<int>(sb_integer_option(o, "backlog", 1, INT32_MAX, options.backlog));
    options.connect_timeout_ms =
        static_cast<uint32_t>(sb_integer_option(o, "connectTimeoutMs", 0, INT32_MAX, options.connect_timeout_ms));
    options.idle_timeout_ms =
        static_cast<uint32_t>(sb_integer_option(o, "idleTimeoutMs", 0, INT32_MAX, options.idle_timeout_ms));
    Napi::Value no_delay = o.Get("noDelay");
    if (!no_delay.IsUndefined()) {
      if (!no_delay.IsBoolean()) throw Napi::TypeError::New(env, "options.noDelay must be a boolean");
      options.no_delay = no_delay.As<Napi::Boolean>().Value();
    }
    uint16_t port = 0;
    sb_status st = engine_->listen(options, &port);
    if (!st.ok()) throw sb_system_error(env, st);
    listening_ = true;
    update_ref(env);
    return Napi::Number::New(env, port);
  }

  Napi::Value stop_listening(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!closed_ && listening_) {
      engine_->stop_listening();
      listening_ = false;
      update_ref(env);
    }
    return env.Undefined();
  }

  // decide(admit: number[], refuse: number[]): void — verdicts on ids from accepted events, each once.
  Napi::Value decide(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<int64_t> admit = sb_id_array(info, 0, "admit");
    std::vector<int64_t> refuse = sb_id_array(info, 1, "refuse");
    check_open(env);
    // All or nothing: every id must be waiting (and appear once) before any verdict is taken, so that
    // live_ counts exactly the connections whose closed event is still to come.
    std::unordered_set<int64_t> seen;
    for (const std::vector<int64_t>* ids : {&admit, &refuse}) {
      for (int64_t id : *ids) {
        if (waiting_.count(id) == 0 || !seen.insert(id).second) {
          throw sb_coded_error(env, "ERR_INVALID_ARG_VALUE",
                               "connection " + std::to_string(id) + " is not waiting for a verdict");
        }
      }
    }
    for (int64_t id : seen) waiting_.erase(id);
    live_ += admit.size();
    engine_->decide(std::move(admit), std::move(refuse));
    update_ref(env);
    return env.Undefined();
  }

  Napi::Value remove_all(const Napi::CallbackInfo& info) {
    if (!closed_) engine_->remove_all();
    return info.Env().Undefined();
  }

  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* key, double v) { o.Set(key, Napi::Number::New(env, v)); };
    num("connections", static_cast<double>(live_));
    num("waiting", static_cast<double>(waiting_.size()));
    num("pipesPooled", static_cast<double>(engine_ ? engine_->pipes_pooled() : 0));
    num("pipesInUse", static_cast<double>(engine_ ? engine_->pipes_in_use() : 0));
    num("bytesIn", static_cast<double>(engine_ ? engine_->bytes_in() : 0));
    num("bytesOut", static_cast<double>(engine_ ? engine_->bytes_out() : 0));
    num("acceptErrors", static_cast<double>(engine_ ? engine_->accept_errors() : 0));
    return o;
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    shutdown();
    // Drops the reference a listening engine held: with no closed report left to come, no call_js would
    // ever do it, and the wrapper with its engine (epoll and eventfd descriptors) would live until teardown.
    update_ref(info.Env());
    return info.Env().Undefined();
  }

  // Keeps the loop alive (and this object, for call_js) while the engine listens or owns connections
  // whose closed events are still to come.
  void update_ref(Napi::Env env) {
    bool want = !closed_ ? (listening_ || live_ > 0) : live_ > 0;
    if (want == referenced_) return;
    referenced_ = want;
    if (want) {
      tsfn_.Ref(env);
      Ref();
    } else {
      tsfn_.Unref(env);
      Unref();
    }
  }

  // Idempotent. Joins the engine thread (its last batch, the "removed" reports, is queued before the
  // join returns and delivered on a later turn), then lets the thread-safe function finalize.
  void shutdown() {
    if (closed_) return;
    closed_ = true;
    listening_ = false;
    waiting_.clear();
    if (engine_) engine_->stop();
    tsfn_.Release();
    // Cleared by on_env_cleanup before it calls here, so the hook is removed only when it has not run
    // (close() from JS, or the object collected before teardown).
    if (hook_added_) {
      hook_added_ = false;
      napi_remove_env_cleanup_hook(env_, &sb_tcp_engine_wrap::on_env_cleanup, this);
    }
  }

  static void on_env_cleanup(void* arg) {
    auto* self = static_cast<sb_tcp_engine_wrap*>(arg);
    self->hook_added_ = false;
    self->shutdown();
  }

  std::shared_ptr<sb_js_link> link_ = std::make_shared<sb_js_link>(sb_js_link{this});
  tsfn_t tsfn_;
  std::unique_ptr<sb_tcp_engine> engine_;
  // JS-thread bookkeeping: clients delivered in accepted events and not yet judged, and admitted
  // connections whose closed event has not been delivered.
  std::unordered_set<int64_t> waiting_;
  size_t live_ = 0;
  napi_env env_ = nullptr;
  bool closed_ = false;
  bool listening_ = false;
  bool hook_added_ = false;
  bool referenced_ = false;
};

Napi::Object sb_init(Napi::Env env, Napi::Object exports) {
  // Nothing static: each environment (main thread, every worker) gets its own class and engines,
  // which is what makes the addon safe to load in worker threads.
  exports.Set("TcpEngine", sb_tcp_engine_wrap::define(env));
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  return exports;
}

}  // namespace

NODE_API_MODULE(secbeat_native, sb_init)
