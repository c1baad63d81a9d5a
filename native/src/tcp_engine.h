// The TCP engine: TCP mode's whole data path on one native epoll thread per JS thread. It accepts on a
// SO_REUSEPORT listener, hands each client's address to JS for admission (the policy — blocklist,
// connection limits — stays in TypeScript and is decided in batches), connects admitted clients to the
// backend, and moves bytes both ways with splice(2) through pipes. No byte and no per-connection object
// ever reaches the JS heap: JS sees one batch of accepted and closed events per epoll turn.
// Owned by one TcpEngine JS object (addon.cc); this header knows nothing about Node-API.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <string>

#include "errno_name.h"
#include <thread>
#include <unordered_map>
#include <vector>

// A client the engine accepted; it waits, unread and unconnected, for JS to admit or refuse it.
struct sb_accepted_event {
  int64_t id;
  std::string ip;  // as inet_ntop formats it (IPv4-mapped IPv6 stays "::ffff:a.b.c.d", as in node:net)
  bool ipv6;
};

// What the engine reports exactly once for every admitted connection, from its own thread.
struct sb_closed_event {
  int64_t id;
  std::string ip;
  uint64_t bytes_in;   // client -> backend, delivered to the backend socket
  uint64_t bytes_out;  // backend -> client, delivered to the client socket
  int64_t connect_ms;  // admission to backend connected; -1 when the backend never connected
  int64_t duration_ms; // accept to close
  // "closed" | "reset" | "idle" | "removed" | "connect_refused" | "connect_timeout"
  // | "connect_error:<ERRNO>" | "error:<ERRNO>"
  std::string reason;
};

struct sb_event_batch {
  std::vector<sb_accepted_event> accepted;
  std::vector<sb_closed_event> closed;
};

// Receives one batch per epoll turn on the engine thread; must not block (the addon queues it on a
// thread-safe function).
using sb_event_sink = std::function<void(sb_event_batch&&)>;

// A failed call: errno plus the syscall (is_syscall) or the check that failed, for the JS error.
struct sb_status {
  int err = 0;
  const char* what = "";
  bool is_syscall = true;
  bool ok() const { return err == 0; }
};

// An IPv4 or IPv6 socket address with its length.
struct sb_address {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// Parses a numeric IPv4 or IPv6 address (no name lookup: JS resolves names first).
bool sb_parse_address(const std::string& host, uint16_t port, sb_address* out);

struct sb_listen_options {
  sb_address listen;
  int backlog = 4096;
  sb_address backend;
  uint32_t connect_timeout_ms = 5000;  // 0 = no deadline but the kernel's own (SYN retries)
  uint32_t idle_timeout_ms = 0;        // 0 = never
  bool no_delay = true;                // TCP_NODELAY on both legs
};

struct sb_conn;
struct sb_direction;

class sb_tcp_engine {
 public:
  // pipe_size_bytes: capacity asked for with F_SETPIPE_SZ on new pipes (0 = kernel default); a refusal
  // (EPERM over pipe-user-pages-soft, EINVAL above pipe-max-size) keeps the default, it is not an error.
  sb_tcp_engine(sb_event_sink sink, size_t pipe_size_bytes);
  ~sb_tcp_engine();
  sb_tcp_engine(const sb_tcp_engine&) = delete;
  sb_tcp_engine& operator=(const sb_tcp_engine&) = delete;

  // Creates the epoll instance, the wake-up eventfd and the thread. Call once, first.
  sb_status start();

  // Any thread (the JS thread in practice), once. Binds with SO_REUSEADDR and SO_REUSEPORT (other
  // threads' engines bind the same port) and listens here, so that EADDRINUSE and friends come back to
  // the caller; the engine thread then accepts. Writes the bound port (useful with port 0).
  sb_status listen(const sb_listen_options& options, uint16_t* bound_port);

  // Closes the listening socket (drain); connections already accepted go on.
  void stop_listening();

  // Verdicts on accepted clients: admitted ones are connected to the backend and reported once when
  // they end; refused ones are reset (RST: the client learns at once, and no TIME_WAIT stays here) and
  // never reported. The caller passes only ids it got in accepted events, each once.
  void decide(std::vector<int64_t>&& admit, std::vector<int64_t>&& refuse);

  // Ends every admitted connection with reason "removed" (a drain deadline).
  void remove_all();

  // Stops and joins the thread; admitted connections still open are reported as "removed" through the
  // sink before this returns, clients still waiting for a verdict are reset. Idempotent.
  void stop();

  size_t pipes_pooled() const { return pipes_pooled_.load(std::memory_order_relaxed); }
  size_t pipes_in_use() const { return pipes_in_use_.load(std::memory_order_relaxed); }
  uint64_t bytes_in() const { return bytes_total_[0].load(std::memory_order_relaxed); }
  uint64_t bytes_out() const { return bytes_total_[1].load(std::memory_order_relaxed); }
  // accept(2) failures other than a client that left first (EMFILE, ENOBUFS ...).
  uint64_t accept_errors() const { return accept_errors_.load(std::memory_order_relaxed); }

 private:
  struct sb_command {
    enum class kind { listen, stop_listening, admit, refuse, remove_all } what;
    int64_t id;  // admit, refuse
    int fd;      // listen
  };
  struct sb_deadline {
    int64_t at_ms;
    uint64_t serial;  // which sb_conn the entry was made for
    int64_t id;
    bool connect;  // the backend connect deadline, else the idle deadline
    bool operator>(const sb_deadline& o) const { return at_ms > o.at_ms; }
  };
  struct sb_pipe {
    int r = -1;
    int w = -1;
  };

  void run();
  void loop();  // returns when stopping, or after an unrecoverable epoll_wait error
  void wake();
  void push_command(const sb_command& cmd);
  void take_commands(bool running);  // false when stopping: nothing new starts, admitted ones report
  void accept_clients(int64_t now_ms);
  void set_listener_events(uint32_t events);
  void connect_backend(sb_conn* c, int64_t now_ms);
  void on_connected(sb_conn* c, int64_t now_ms);
  void on_socket_event(sb_conn* c, int side, uint32_t events);
  bool pump(sb_conn* c);
  bool pump_direction(sb_conn* c, int d, int64_t* budget);
  void finish(sb_conn* c, const std::string& reason, bool reset);
  void fail(sb_conn* c, int err);
  void discard(sb_conn* c);
  void check_deadlines(int64_t now_ms);
  int next_timeout_ms(int64_t now_ms) const;
  bool take_pipe(sb_direction* dir, int* err);
  void give_pipe(sb_direction* dir, bool empty);
  void flush_events();
  void close_all(const char* reason);

  sb_event_sink sink_;
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
  bool listen_called_ = false;  // guarded by cmd_mu_

  // Set by listen() before the listen command is queued; read-only afterwards.
  sb_listen_options options_;

  // Engine-thread state below: touched only by run() and what it calls.
  int listen_fd_ = -1;
  int64_t listen_paused_until_ms_ = -1;  // accept hit a resource limit: wait before accepting again
  size_t waiting_ = 0;                    // accepted clients without a verdict
  bool listen_full_ = false;              // silenced because waiting_ reached its cap
  int64_t next_id_ = 1;
  std::unordered_map<int64_t, sb_conn*> conns_;
  std::vector<sb_conn*> ready_;      // connections that ran out of budget while still ready
  std::vector<sb_conn*> graveyard_;  // finished this turn; freed after the epoll batch (stale events)
  std::priority_queue<sb_deadline, std::vector<sb_deadline>, std::greater<sb_deadline>> deadlines_;
  std::vector<sb_pipe> pool_;
  sb_event_batch pending_;
  uint64_t next_serial_ = 1;

  std::atomic<size_t> pipes_pooled_{0};
  std::atomic<size_t> pipes_in_use_{0};
  std::atomic<uint64_t> bytes_total_[2] = {{0}, {0}};
  std::atomic<uint64_t> accept_errors_{0};
};
