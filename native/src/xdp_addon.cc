// secbeat_xdp: the Node-API addon over libbpf for SYN mode's XDP program (bpf/secbeat.bpf.c). It opens and
// loads the object (maps pinned and reused when asked), attaches to an interface in native mode and falls back
// to generic mode, updates and reads maps in batches, sums the per-CPU counters and runs a program on a packet
// with BPF_PROG_TEST_RUN (also in live-frames mode, for the bench's flood generator). Typed for TS in src/native/xdp.ts.
//
// Thread use: every call runs on the JS thread that owns the object and returns when the syscall does; none
// blocks for long (map batches are bounded by the caller), so no worker thread is involved.
#include <napi.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../../bpf/secbeat.h"
#include "errno_name.h"

namespace {

// libbpf's messages during the current call (the verifier's log among them), for the error that call throws.
thread_local std::string libbpf_log;

int capture_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // libbpf hands the verifier's whole log over in one call: size it first, so its last lines (what failed) stay.
  va_list measure;
  va_copy(measure, args);
  int n = vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  if (n <= 0 || libbpf_log.size() >= (1 << 22)) return n;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(text.data(), text.size(), format, args);
  text.resize(static_cast<size_t>(n));
  libbpf_log.append(text);
  return n;
}

// A JS Error with code (errno name) and errno, and the libbpf log of the failed call when there is one.
Napi::Error libbpf_error(Napi::Env env, const std::string& what, int err) {
  err = err < 0 ? -err : err;
  std::string message = what + ": " + std::strerror(err) + " (" + sb_errno_name(err) + ")";
  std::string tail = libbpf_log;
  if (tail.size() > 4000) tail = "…" + tail.substr(tail.size() - 4000);
  if (!tail.empty()) message += "\n" + tail;
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, sb_errno_name(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  return e;
}

uint32_t uint_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || static_cast<double>(static_cast<uint32_t>(d)) != d) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in [0, 2^32)");
  }
  return static_cast<uint32_t>(d);
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> buffer_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

class XdpObject : public Napi::ObjectWrap<XdpObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "XdpObject",
                       {
                           InstanceMethod<&XdpObject::Load>("load"),
                           InstanceMethod<&XdpObject::Attach>("attach"),
                           InstanceMethod<&XdpObject::Detach>("detach"),
                           InstanceMethod<&XdpObject::AttachedId>("attachedProgramId"),
                           InstanceMethod<&XdpObject::ProgramId>("programId"),
                           InstanceMethod<&XdpObject::UpdateBatch>("updateBatch"),
                           InstanceMethod<&XdpObject::DeleteBatch>("deleteBatch"),
                           InstanceMethod<&XdpObject::Dump>("dump"),
                           InstanceMethod<&XdpObject::Counters>("counters"),
                           InstanceMethod<&XdpObject::TestRun>("testRun"),
                           InstanceMethod<&XdpObject::Close>("close"),
                       });
  }

  // new XdpObject(objectPath, pinDir | '', sourceEntries, programName)
  explicit XdpObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XdpObject>(info) {
    Napi::Env env = info.Env();
    std::string path = string_arg(info, 0, "objectPath");
    std::string pin_dir = string_arg(info, 1, "pinDir");
    uint32_t sources = uint_arg(info, 2, "sourceEntries");
    std::string program = string_arg(info, 3, "programName");
    libbpf_log.clear();
    obj_ = bpf_object__open_file(path.c_str(), nullptr);
    if (obj_ == nullptr) throw libbpf_error(env, "opening " + path, errno);
    prog_ = bpf_object__find_program_by_name(obj_, program.c_str());
    if (prog_ == nullptr) {
      Close(info);
      throw Napi::Error::New(env, path + " has no program " + program);
    }
    bpf_map* map;
    bpf_object__for_each_map(map, obj_) {
      const char* name = bpf_map__name(map);
      // sb_sources4 and sb_sources6: the rate limiter's buckets, per address family.
      if (std::strncmp(name, "sb_sources", 10) == 0 && sources > 0) bpf_map__set_max_entries(map, sources);
      // A pin path makes libbpf reuse the pinned map when it is compatible, and pin it when absent: the lists
      // and counters outlive a restart of the node.
      if (!pin_dir.empty() && std::strncmp(name, "sb_", 3) == 0) {
        std::string pin = pin_dir + "/" + name;
        int err = bpf_map__set_pin_path(map, pin.c_str());
        if (err) {
          Close(info);
          throw libbpf_error(env, "setting pin path " + pin, err);
        }
      }
    }
  }

  ~XdpObject() override { Release(); }

 private:
  bpf_object* obj_ = nullptr;
  bpf_program* prog_ = nullptr;
  bool loaded_ = false;
  int link_fd_ = -1;

  void Release() {
    if (link_fd_ >= 0) close(link_fd_);
    link_fd_ = -1;
    if (obj_ != nullptr) bpf_object__close(obj_);
    obj_ = nullptr;
    prog_ = nullptr;
    loaded_ = false;
  }

  void RequireLoaded(Napi::Env env) {
    if (obj_ == nullptr) throw Napi::Error::New(env, "the XDP object is closed");
    if (!loaded_) throw Napi::Error::New(env, "the XDP object is not loaded");
  }

  bpf_map* MapNamed(Napi::Env env, const std::string& name) {
    RequireLoaded(env);
    bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
    if (map == nullptr) throw Napi::Error::New(env, "no map named " + name);
    return map;
  }

  // Bytes of one value as the syscalls read and write it: per-CPU maps hold one 8-byte-aligned copy per CPU.
  static size_t ValueBytes(bpf_map* map) {
    size_t size = bpf_map__value_size(map);
    bpf_map_type type = bpf_map__type(map);
    if (type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
      return ((size + 7) & ~size_t{7}) * static_cast<size_t>(libbpf_num_possible_cpus());
    }
    return size;
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (obj_ == nullptr) throw Napi::Error::New(env, "the XDP object is closed");
    if (loaded_) return env.Undefined();
    libbpf_log.clear();
    int err = bpf_object__load(obj_);
    if (err) throw libbpf_error(env, "loading the XDP program (the verifier's log follows)", err);
    loaded_ = true;
    return env.Undefined();
  }

  // attach(ifindex, mode: 'native' | 'generic' | 'auto') → { mode: 'native' | 'generic', nativeError }. A BPF link
  // (BPF_LINK_CREATE), owned by this object: closing it, or the process dying however it dies, detaches the
  // program, so a crashed node leaves no attachment behind. Another program on the interface makes this fail
  // (EBUSY). nativeError: why native mode was refused when 'auto' fell back to generic, else null.
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireLoaded(env);
    uint32_t ifindex = uint_arg(info, 0, "ifindex");
    std::string mode = string_arg(info, 1, "mode");
    if (mode != "native" && mode != "generic" && mode != "auto") throw Napi::TypeError::New(env, "mode must be native, generic or auto");
    if (link_fd_ >= 0) throw Napi::Error::New(env, "the program is already attached");
    auto attach = [&](uint32_t flags) -> int {
      LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
      int fd = bpf_link_create(bpf_program__fd(prog_), static_cast<int>(ifindex), BPF_XDP, &opts);
      if (fd >= 0) link_fd_ = fd;
      return fd < 0 ? fd : 0;
    };
    Napi::Object result = Napi::Object::New(env);
    result.Set("nativeError", env.Null());
    libbpf_log.clear();
    if (mode != "generic") {
      int err = attach(XDP_FLAGS_DRV_MODE);
      if (err == 0) {
        result.Set("mode", Napi::String::New(env, "native"));
        return result;
      }
      if (mode == "native") throw libbpf_error(env, "attaching in native (driver) mode", err);
      result.Set("nativeError", libbpf_error(env, "native (driver) mode", err).Message());
      libbpf_log.clear();
    }
    int err = attach(XDP_FLAGS_SKB_MODE);
    if (err) throw libbpf_error(env, "attaching in generic (skb) mode", err);
    result.Set("mode", Napi::String::New(env, "generic"));
    return result;
  }

  // detach(): ends the link (the program leaves the interface). Idempotent.
  Napi::Value Detach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (link_fd_ < 0) return env.Undefined();
    int err = bpf_link_detach(link_fd_);
    close(link_fd_);
    link_fd_ = -1;
    // ENOLINK: the interface went away and took the attachment with it.
    if (err && err != -ENOLINK) throw libbpf_error(env, "detaching the XDP link", err);
    return env.Undefined();
  }

  // attachedProgramId(ifindex, mode) → the id of the XDP program attached in that mode, 0 for none.
  Napi::Value AttachedId(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t ifindex = uint_arg(info, 0, "ifindex");
    std::string mode = string_arg(info, 1, "mode");
    uint32_t id = 0;
    int err = bpf_xdp_query_id(static_cast<int>(ifindex), mode == "generic" ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE, &id);
    if (err) throw libbpf_error(env, "querying ifindex " + std::to_string(ifindex), err);
    return Napi::Number::New(env, id);
  }

  Napi::Value ProgramId(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireLoaded(env);
    bpf_prog_info prog_info{};
    uint32_t len = sizeof(prog_info);
    int err = bpf_obj_get_info_by_fd(bpf_program__fd(prog_), &prog_info, &len);
    if (err) throw libbpf_error(env, "reading the program's info", err);
    return Napi::Number::New(env, prog_info.id);
  }

  // updateBatch(name, keys, values, count): `count` entries, keys and values packed back to back.
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = MapNamed(env, string_arg(info, 0, "map"));
    auto keys = buffer_arg(info, 1, "keys");
    auto values = buffer_arg(info, 2, "values");
    uint32_t count = uint_arg(info, 3, "count");
    if (keys.Length() != size_t{count} * bpf_map__key_size(map) || values.Length() != count * ValueBytes(map)) {
      throw Napi::RangeError::New(env, "keys and values must hold exactly `count` entries of the map's sizes");
    }
    if (count == 0) return env.Undefined();
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
    uint32_t done = count;
    int err = bpf_map_update_batch(bpf_map__fd(map), keys.Data(), values.Data(), &done, &opts);
    if (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP) {
      // Maps without batch support: element by element.
      size_t ks = bpf_map__key_size(map), vs = ValueBytes(map);
      for (uint32_t i = 0; i < count; i++) {
        int e = bpf_map_update_elem(bpf_map__fd(map), keys.Data() + i * ks, values.Data() + i * vs, BPF_ANY);
        if (e) throw libbpf_error(env, "updating " + std::string(bpf_map__name(map)), e);
      }
      return env.Undefined();
    }
    if (err) throw libbpf_error(env, "updating " + std::string(bpf_map__name(map)) + " in a batch", err);
    return env.Undefined();
  }

  // deleteBatch(name, keys, count) → how many existed and were deleted.
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = MapNamed(env, string_arg(info, 0, "map"));
    auto keys = buffer_arg(info, 1, "keys");
    uint32_t count = uint_arg(info, 2, "count");
    size_t ks = bpf_map__key_size(map);
    if (keys.Length() != count * ks) throw Napi::RangeError::New(env, "keys must hold exactly `count` keys");
    // Element by element: a batch delete stops at the first absent key, and absent keys are normal here.
    uint32_t deleted = 0;
    for (uint32_t i = 0; i < count; i++) {
      int err = bpf_map_delete_elem(bpf_map__fd(map), keys.Data() + i * ks);
      if (err == 0) deleted++;
      else if (err != -ENOENT) throw libbpf_error(env, "deleting from " + std::string(bpf_map__name(map)), err);
    }
    return Napi::Number::New(env, deleted);
  }

  // dump(name, limit) → { keys, values, count }: at most `limit` entries, read in batches (BPF_MAP_LOOKUP_BATCH)
  // where the map type has them, else key by key (get_next_key), which every type has.
  Napi::Value Dump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = MapNamed(env, string_arg(info, 0, "map"));
    uint32_t limit = uint_arg(info, 1, "limit");
    int fd = bpf_map__fd(map);
    size_t ks = bpf_map__key_size(map), vs = ValueBytes(map);
    std::vector<uint8_t> keys, values;
    uint32_t count = 0;
    constexpr uint32_t kBatch = 1024;
    std::vector<uint8_t> batch_keys(kBatch * ks), batch_values(kBatch * vs);
    // The batch cursor is opaque to userspace; its size is the key's (generic_map_lookup_batch) at most.
    std::vector<uint8_t> in_batch(ks > 8 ? ks : 8), out_batch(in_batch.size());
    bool first = true, batched = true;
    while (count < limit) {
      uint32_t n = std::min(kBatch, limit - count);
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      int err = bpf_map_lookup_batch(fd, first ? nullptr : in_batch.data(), out_batch.data(), batch_keys.data(), batch_values.data(), &n, &opts);
      if (err && err != -ENOENT) {
        if (first && (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP)) batched = false;
        else throw libbpf_error(env, "reading " + std::string(bpf_map__name(map)) + " in batches", err);
        break;
      }
      keys.insert(keys.end(), batch_keys.begin(), batch_keys.begin() + static_cast<std::ptrdiff_t>(n * ks));
      values.insert(values.end(), batch_values.begin(), batch_values.begin() + static_cast<std::ptrdiff_t>(n * vs));
      count += n;
      if (err == -ENOENT) break;
      in_batch = out_batch;
      first = false;
    }
    if (!batched) {
      std::vector<uint8_t> key(ks), next(ks), value(vs);
      int err = bpf_map_get_next_key(fd, nullptr, next.data());
      while (err == 0 && count < limit) {
        if (bpf_map_lookup_elem(fd, next.data(), value.data()) == 0) {
          keys.insert(keys.end(), next.begin(), next.end());
          values.insert(values.end(), value.begin(), value.end());
          count++;
        }
        key = next;
        err = bpf_map_get_next_key(fd, key.data(), next.data());
      }
      if (err && err != -ENOENT) throw libbpf_error(env, "walking " + std::string(bpf_map__name(map)), err);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), keys.size()));
    out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), values.size()));
    out.Set("count", Napi::Number::New(env, count));
    return out;
  }

  // counters() → BigUint64Array [packets, bytes] per reason, summed over CPUs.
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = MapNamed(env, "sb_counters");
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) throw libbpf_error(env, "counting CPUs", cpus);
    std::vector<secbeat_counter> per_cpu(static_cast<size_t>(cpus));
    auto out = Napi::BigUint64Array::New(env, 2 * SECBEAT_REASON_COUNT);
    for (uint32_t reason = 0; reason < SECBEAT_REASON_COUNT; reason++) {
      int err = bpf_map_lookup_elem(bpf_map__fd(map), &reason, per_cpu.data());
      if (err) throw libbpf_error(env, "reading counters", err);
      uint64_t packets = 0, bytes = 0;
      for (const secbeat_counter& c : per_cpu) {
        packets += c.packets;
        bytes += c.bytes;
      }
      out[2 * reason] = packets;
      out[2 * reason + 1] = bytes;
    }
    return out;
  }

  // testRun(packet, repeat) → { action, packet, durationNs }: BPF_PROG_TEST_RUN on a copy of `packet`.
  // testRun(packet, repeat, ifindex, batchSize) → the same in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES): each
  // of `repeat` runs gets a fresh frame of `packet` as if received on `ifindex`, and XDP_TX really sends it there;
  // `packet` and `action` are then not reported (no output in that mode).
  Napi::Value TestRun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireLoaded(env);
    auto packet = buffer_arg(info, 0, "packet");
    uint32_t repeat = uint_arg(info, 1, "repeat");
    bool live = info.Length() > 2 && !info[2].IsUndefined();
    libbpf_log.clear();
    Napi::Object result = Napi::Object::New(env);
    if (live) {
      xdp_md ctx{};
      // The kernel wants the context to describe the data it was given: data 0, data_end its length.
      ctx.data_end = static_cast<uint32_t>(packet.Length());
      ctx.ingress_ifindex = uint_arg(info, 2, "ifindex");
      LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.Data(), .data_size_in = static_cast<uint32_t>(packet.Length()),
                  .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(repeat),
                  .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = uint_arg(info, 3, "batchSize"));
      int err = bpf_prog_test_run_opts(bpf_program__fd(prog_), &opts);
      if (err) throw libbpf_error(env, "BPF_PROG_TEST_RUN (live frames)", err);
      result.Set("action", env.Null());
      result.Set("packet", env.Null());
      result.Set("durationNs", Napi::Number::New(env, opts.duration));
      return result;
    }
    // Room for a reply grown at the head (the kernel copies data_out from the adjusted start).
    std::vector<uint8_t> out(packet.Length() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.Data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(packet.Length()), .data_size_out = static_cast<uint32_t>(out.size()),
                .repeat = static_cast<int>(repeat));
    int err = bpf_prog_test_run_opts(bpf_program__fd(prog_), &opts);
    if (err) throw libbpf_error(env, "BPF_PROG_TEST_RUN", err);
    result.Set("action", Napi::Number::New(env, opts.retval));
    result.Set("packet", Napi::Buffer<uint8_t>::Copy(env, out.data(), opts.data_size_out));
    result.Set("durationNs", Napi::Number::New(env, opts.duration));
    return result;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }
};

// monotonicNs() → CLOCK_MONOTONIC_COARSE in ns as a BigInt: the clock the program reads
// (bpf_ktime_get_coarse_ns), for blocklist expiries.
Napi::Value MonotonicNs(const Napi::CallbackInfo& info) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  return Napi::BigInt::New(info.Env(), ns);
}

// ifindex(name) → the interface's index in this network namespace, 0 when there is none.
Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  std::string name = string_arg(info, 0, "name");
  return Napi::Number::New(info.Env(), if_nametoindex(name.c_str()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(capture_libbpf);
  exports.Set("XdpObject", XdpObject::Define(env));
  exports.Set("monotonicNs", Napi::Function::New(env, MonotonicNs));
  exports.Set("ifindex", Napi::Function::New(env, IfIndex));
  Napi::Array reasons = Napi::Array::New(env, SECBEAT_REASON_COUNT);
  uint32_t i = 0;
#define SECBEAT_REASON_NAME(name, label) reasons.Set(i++, Napi::String::New(env, label));
  SECBEAT_REASONS(SECBEAT_REASON_NAME)
#undef SECBEAT_REASON_NAME
  exports.Set("reasons", reasons);
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

NODE_API_MODULE(secbeat_xdp, Init)
