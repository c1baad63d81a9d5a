// The splice engine: one epoll thread that moves bytes between pairs of connected TCP sockets with
// splice(2) through pipes, so the bytes never enter user space and never touch the JS event loop.
// Owned by one SpliceEngine JS object (addon.cc); this header knows nothing about Node-API.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

// What the engine reports once per connection, from its own thread.
struct sb_closed_event {
  int64_t id;
  uint64_t bytes_a_to_b;  // bytes delivered to B's socket (accepted by B's kernel send buffer)
  uint64_t bytes_b_to_a;
  std::string reason;  // "closed" | "reset" | "idle" | "removed" | "error:<ERRNO>"
};

// Receives batches of closed events on the engine thread; must not block (the addon queues them on a
// thread-safe function).
using sb_closed_sink = std::function<void(std::vector<sb_closed_event>&&)>;

// A failed call: errno plus the syscall (is_syscall) or the check that failed, for the JS error.
struct sb_status {
  int err = 0;
  const char* what = "";
  bool is_syscall = true;
  bool ok() const { return err == 0; }
};

// "ECONNRESET" for ECONNRESET; "E<n>" for numbers glibc does not name.
std::string sb_errno_name(int err);

struct sb_conn;
struct sb_direction;

class sb_splice_engine {
 public:
  // pipe_size_bytes: capacity asked for with F_SETPIPE_SZ on new pipes (0 = kernel default); a refusal
  // (EPERM over pipe-user-pages-soft, EINVAL above pipe-max-size) keeps the default, it is not an error.
  sb_splice_engine(sb_closed_sink sink, size_t pipe_size_bytes);
  ~sb_splice_engine();
  sb_splice_engine(const sb_splice_engine&) = delete;
  sb_splice_engine& operator=(const sb_splice_engine&) = delete;

  // Creates the epoll instance, the wake-up eventfd and the thread. Call once, before add().
  sb_status start();

  // Any thread (the JS thread in practice). Checks that both fds are connected, non-blocking stream
  // sockets, duplicates them (the engine never closes libuv's fds, only its own duplicates), and queues
  // the pair for the engine thread. idle_timeout_ms 0 = no idle timeout.
  sb_status add(int64_t id, int fd_a, int fd_b, uint32_t idle_timeout_ms);

  // Queues an abort: the engine stops touching the pair and reports it as "removed", unless it closed
  // for another reason first (the report happens exactly once either way). Unknown ids are ignored.
  void remove(int64_t id);

  // Stops and joins the thread; connections still open are reported as "removed" through the sink
  // before this returns. Idempotent.
  void stop();

  size_t pipes_pooled() const { return pipes_pooled_.load(std::memory_order_relaxed); }
  size_t pipes_in_use() const { return pipes_in_use_.load(std::memory_order_relaxed); }

 private:
  struct sb_command {
    enum class kind { add, remove } what;
    sb_conn* conn;  // add: owned by the command until the engine thread takes it
    int64_t id;     // remove
  };
  struct sb_idle_entry {
    int64_t deadline_ms;
    uint64_t serial;  // which sb_conn the entry was made for (ids may be reused after a close)
    int64_t id;
    bool operator>(const sb_idle_entry& o) const { return deadline_ms > o.deadline_ms; }
  };
  struct sb_pipe {
    int r = -1;
    int w = -1;
  };

  void run();
  void loop();  // returns when stopping, or after an unrecoverable epoll_wait error
  void wake();
  void take_commands(bool attach_adds);  // false when stopping: queued adds are reported, not started
  void attach(sb_conn* c);
  void on_socket_event(sb_conn* c, int side, uint32_t events);
  bool pump(sb_conn* c);
  bool pump_direction(sb_conn* c, int d, int64_t* budget);
  void finish(sb_conn* c, const std::string& reason);
  void fail(sb_conn* c, int err);
  void sweep_idle(int64_t now_ms);
  int next_timeout_ms(int64_t now_ms) const;
  bool take_pipe(sb_direction* dir, int* err);
  void give_pipe(sb_direction* dir, bool empty);
  void flush_events();
  void close_all(const char* reason);

  sb_closed_sink sink_;
  size_t pipe_size_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
  std::mutex stop_mu_;  // makes stop() idempotent when the JS close() and the env cleanup hook race

  std::mutex cmd_mu_;
  std::vector<sb_command> commands_;

  // Engine-thread state below: touched only by run() and what it calls.
  std::unordered_map<int64_t, sb_conn*> conns_;
  std::vector<sb_conn*> ready_;      // connections that ran out of budget while still ready
  std::vector<sb_conn*> graveyard_;  // finished this turn; freed after the epoll batch (stale events)
  std::priority_queue<sb_idle_entry, std::vector<sb_idle_entry>, std::greater<sb_idle_entry>> idle_;
  std::vector<sb_pipe> pool_;
  std::vector<sb_closed_event> pending_;
  uint64_t next_serial_ = 1;

  std::atomic<size_t> pipes_pooled_{0};
  std::atomic<size_t> pipes_in_use_{0};
};
