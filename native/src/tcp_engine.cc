// The TCP engine (see tcp_engine.h): an edge-triggered epoll loop on its own thread that accepts
// clients, waits for JS's verdict on each, connects admitted ones to the backend, forwards each pair
// client <-> backend with splice(2) socket -> pipe -> socket, propagates half-closes and resets,
// enforces connect and idle deadlines, and reports every admitted connection exactly once when it ends.
#include "tcp_engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <system_error>
#include <utility>

namespace {

// Bytes one direction may move per turn before other connections get a go. Large enough that a bulk
// transfer pays for its epoll_wait with several pipe-fulls, small enough that 1000 busy connections
// still see each other within milliseconds.
constexpr int64_t SB_TURN_BUDGET_BYTES = 1 << 20;

// Length asked of each socket -> pipe splice; the kernel stops earlier when the pipe's slots are full.
constexpr size_t SB_SPLICE_CHUNK_BYTES = 1 << 20;

// Empty pipes kept for reuse. Every pipe counts against the owner's pipe-user-pages-soft quota by its
// capacity whether it holds data or not, so the pool stays small; pipes are taken only while a
// direction has data in flight (HAProxy does the same), so idle connections hold none.
constexpr size_t SB_PIPE_POOL_MAX = 64;

constexpr int SB_EPOLL_BATCH = 256;

// Clients accepted per listener wake-up before the turn moves on (the listener is level-triggered, so
// the rest wake the next turn): a connection flood cannot starve established connections.
constexpr int SB_ACCEPT_BURST = 256;

// Clients accepted and still waiting for JS's verdict, at most. Past it the listener is silenced until
// verdicts come back: a JS thread that falls behind a flood leaves the excess in the kernel's accept queue
// (and SYN cookies beyond it) instead of holding an fd and a record per client here.
constexpr size_t SB_MAX_WAITING = 4096;

// After accept(2) fails for lack of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM), the listener is
// silenced this long instead of spinning on a level-triggered wake-up it cannot act on; clients wait in
// the kernel's accept queue meanwhile.
constexpr int64_t SB_ACCEPT_PAUSE_MS = 100;

// epoll user data: the sb_conn pointer with the socket side (0 = client, 1 = backend) in the low bit;
// small values no allocation can have tag the wake-up eventfd and the listener.
constexpr uint64_t SB_WAKE_TAG = 0;
constexpr uint64_t SB_LISTEN_TAG = 2;

int64_t sb_now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string sb_format_ip(const sockaddr_storage& ss, bool* ipv6) {
  char buf[INET6_ADDRSTRLEN] = "";
  *ipv6 = ss.ss_family == AF_INET6;
  if (*ipv6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof(buf));
  }
  return buf;
}

// SO_LINGER {on, 0}: close() then sends RST instead of FIN, so a peer never mistakes a connection cut
// short (reset or failure on the other leg) for a complete stream.
void sb_arm_reset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

void sb_set_no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

// One forwarding direction: bytes read from src = fd[d] into the pipe, written from the pipe to
// dst = fd[1 - d]. Direction 0 is client -> backend ("in"), 1 is backend -> client ("out").
struct sb_direction {
  int pipe_r = -1;
  int pipe_w = -1;
  size_t in_pipe = 0;   // exact: splice reports every byte it moves
  uint64_t moved = 0;   // delivered to dst
  // Readiness remembered across edges (edge-triggered epoll reports each change once).
  bool src_ready = true;   // cleared only by EAGAIN on an empty pipe, when it surely means "no data"
  bool pipe_full = false;  // EAGAIN with bytes in the pipe: do not read again until a write succeeded
  bool dst_ready = true;   // cleared by EAGAIN on write, set again by EPOLLOUT
  bool src_eof = false;
  bool shut = false;  // shutdown(dst, SHUT_WR) done: this direction is finished
};

enum class sb_state : uint8_t {
  admitting,    // accepted; waiting for JS's verdict; client not read, backend not connected
  connecting,   // admitted; backend connect in progress
  established,  // forwarding
};

struct sb_conn {
  int64_t id = 0;
  uint64_t serial = 0;
  int fd[2] = {-1, -1};  // 0 = client, 1 = backend
  bool registered[2] = {false, false};
  sb_state state = sb_state::admitting;
  bool admitted = false;  // JS counts it: it is reported exactly once
  bool done = false;
  bool queued_ready = false;
  int64_t accepted_ms = 0;
  int64_t admitted_ms = 0;
  int64_t connect_ms = -1;
  int64_t last_active_ms = 0;
  std::string ip;
  sb_direction dir[2];
};

bool sb_parse_address(const std::string& host, uint16_t port, sb_address* out) {
  *out = sb_address{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out->len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->addr);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

sb_tcp_engine::sb_tcp_engine(sb_event_sink sink, size_t pipe_size_bytes)
    : sink_(std::move(sink)), pipe_size_(pipe_size_bytes) {}

sb_tcp_engine::~sb_tcp_engine() {
  stop();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

sb_status sb_tcp_engine::start() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return {errno, "epoll_create1"};
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return {errno, "eventfd"};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = SB_WAKE_TAG;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0) return {errno, "epoll_ctl"};

  // The thread blocks every signal (it inherits the mask in effect at creation): process signals
  // must reach Node's handlers on its own threads, and an EPIPE from splice, which has no
  // MSG_NOSIGNAL, must not raise SIGPIPE even in an embedder that does not ignore it as Node does.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return {e.code().value() != 0 ? e.code().value() : EAGAIN, "pthread_create"};
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_setname_np(thread_.native_handle(), "sb-tcp");
  started_ = true;
  return {};
}

sb_status sb_tcp_engine::listen(const sb_listen_options& options, uint16_t* bound_port) {
  if (!started_) return {EINVAL, "engine not started", false};
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    if (stopping_.load()) return {ESHUTDOWN, "engine is closed", false};
    if (listen_called_) return {EALREADY, "engine is already listening", false};
    listen_called_ = true;
  }
  int fd = -1;
  // A failed bind leaves the engine as it was: the caller may try another address.
  auto failed = [&](int err, const char* what) -> sb_status {
    if (fd >= 0) close(fd);
    std::lock_guard<std::mutex> lock(cmd_mu_);
    listen_called_ = false;
    return {err, what};
  };
  const sockaddr* addr = reinterpret_cast<const sockaddr*>(&options.listen.addr);
  fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return failed(errno, "socket");
  int one = 1;
  // SO_REUSEPORT: every data-plane thread binds the same port and the kernel spreads connections over
  // them, so a connection never changes thread (what node:net's reusePort does).
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    return failed(errno, "setsockopt(SO_REUSEPORT)");
  }
  // Accepted sockets inherit TCP_NODELAY from the listener (Linux clones the listening socket; checked on
  // 6.18 with getsockopt on an accepted socket), which saves a syscall per connection.
  if (options.no_delay) sb_set_no_delay(fd);
  if (bind(fd, addr, options.listen.len) < 0) return failed(errno, "bind");
  if (::listen(fd, options.backlog) < 0) return failed(errno, "listen");
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  *bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                                  : reinterpret_cast<sockaddr_in&>(bound).sin_port);
  options_ = options;
  std::lock_guard<std::mutex> lock(cmd_mu_);
  if (stopping_.load()) {
    close(fd);
    return {ESHUTDOWN, "engine is closed", false};
  }
  commands_.push_back({sb_command::kind::listen, 0, fd});
  wake();
  return {};
}

void sb_tcp_engine::push_command(const sb_command& cmd) {
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    if (stopping_.load()) return;
    commands_.push_back(cmd);
  }
  wake();
}

void sb_tcp_engine::stop_listening() { push_command({sb_command::kind::stop_listening, 0, -1}); }

void sb_tcp_engine::remove_all() { push_command({sb_command::kind::remove_all, 0, -1}); }

void sb_tcp_engine::decide(std::vector<int64_t>&& admit, std::vector<int64_t>&& refuse) {
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    // Admissions queued before stop() are still honoured by run() (reported as "removed"), so a
    // caller that counted them is never left waiting; after it, the caller knows the engine is closed.
    if (stopping_.load()) return;
    commands_.reserve(commands_.size() + admit.size() + refuse.size());
    for (int64_t id : admit) commands_.push_back({sb_command::kind::admit, id, -1});
    for (int64_t id : refuse) commands_.push_back({sb_command::kind::refuse, id, -1});
  }
  wake();
}

void sb_tcp_engine::stop() {
  std::lock_guard<std::mutex> guard(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    stopping_.store(true);
  }
  if (started_) {
    wake();
    thread_.join();
  }
}

void sb_tcp_engine::wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero, so the thread is going to wake anyway.
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;
}

void sb_tcp_engine::run() {
  try {
    loop();
  } catch (...) {
    // Only allocation failure can get here; give every connection back rather than leave it in limbo.
    close_all("error:ENOMEM");
  }
  // From here on nothing is queued any more, also when the loop ended on its own after an error.
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    stopping_.store(true);
  }
  take_commands(false);
  close_all("removed");
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  flush_events();
  for (sb_conn* c : graveyard_) delete c;
  graveyard_.clear();
  for (sb_pipe& p : pool_) {
    close(p.r);
    close(p.w);
  }
  pool_.clear();
  pipes_pooled_.store(0);
}

void sb_tcp_engine::loop() {
  epoll_event events[SB_EPOLL_BATCH];
  while (!stopping_.load(std::memory_order_relaxed)) {
    int timeout = ready_.empty() ? next_timeout_ms(sb_now_ms()) : 0;
    int n = epoll_wait(epoll_fd_, events, SB_EPOLL_BATCH, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      close_all(("error:" + sb_errno_name(errno)).c_str());
      return;
    }
    int64_t now = sb_now_ms();
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == SB_WAKE_TAG) {
        uint64_t count;
        ssize_t r = read(wake_fd_, &count, sizeof(count));
        (void)r;
        take_commands(true);
        continue;
      }
      if (tag == SB_LISTEN_TAG) {
        accept_clients(now);
        continue;
      }
      auto* c = reinterpret_cast<sb_conn*>(tag & ~uint64_t{1});
      if (!c->done) on_socket_event(c, static_cast<int>(tag & 1), events[i].events);
    }
    std::vector<sb_conn*> ready;
    ready.swap(ready_);
    for (sb_conn* c : ready) {
      c->queued_ready = false;
      if (!c->done) pump(c);
    }
    now = sb_now_ms();
    if (listen_paused_until_ms_ >= 0 && now >= listen_paused_until_ms_) {
      listen_paused_until_ms_ = -1;
      if (!listen_full_) set_listener_events(EPOLLIN);
    }
    check_deadlines(now);
    flush_events();
    for (sb_conn* c : graveyard_) delete c;
    graveyard_.clear();
  }
}

void sb_tcp_engine::take_commands(bool running) {
  std::vector<sb_command> commands;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    commands.swap(commands_);
  }
  int64_t now = sb_now_ms();
  for (const sb_command& cmd : commands) {
    switch (cmd.what) {
      case sb_command::kind::listen: {
        listen_fd_ = cmd.fd;
        if (!running) break;  // closed by run()
        epoll_event ev{};
        // Level-triggered: a burst larger than SB_ACCEPT_BURST wakes the next turn by itself.
        ev.events = EPOLLIN;
        ev.data.u64 = SB_LISTEN_TAG;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) < 0) accept_errors_.fetch_add(1);
        break;
      }
      case sb_command::kind::stop_listening:
        if (listen_fd_ >= 0) {
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
          close(listen_fd_);
          listen_fd_ = -1;
          listen_paused_until_ms_ = -1;
        }
        break;
      case sb_command::kind::admit:
      case sb_command::kind::refuse: {
        auto it = conns_.find(cmd.id);
        if (it == conns_.end() || it->second->state != sb_state::admitting || it->second->admitted) break;
        sb_conn* c = it->second;
        waiting_--;
        if (listen_full_ && waiting_ < SB_MAX_WAITING / 2) {
          listen_full_ = false;
          if (listen_paused_until_ms_ < 0) set_listener_events(EPOLLIN);
        }
        if (cmd.what == sb_command::kind::refuse) {
          discard(c);
        } else {
          c->admitted = true;
          c->admitted_ms = now;
          if (running) {
            connect_backend(c, now);
          } else {
            finish(c, "removed", false);
          }
        }
        break;
      }
      case sb_command::kind::remove_all:
        close_all("removed");
        break;
    }
  }
}

void sb_tcp_engine::set_listener_events(uint32_t events) {
  if (listen_fd_ < 0) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = SB_LISTEN_TAG;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
}

void sb_tcp_engine::accept_clients(int64_t now_ms) {
  for (int i = 0; i < SB_ACCEPT_BURST && listen_fd_ >= 0; i++) {
    if (waiting_ >= SB_MAX_WAITING) {
      listen_full_ = true;
      set_listener_events(0);
      return;
    }
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      // The client went away between the handshake and accept (or a network error the kernel passes
      // on, as accept(2) documents for Linux): nothing to admit, try the next one.
      if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == ENETDOWN || err == ENOPROTOOPT ||
          err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH || err == EOPNOTSUPP || err == ENETUNREACH) {
        continue;
      }
      accept_errors_.fetch_add(1, std::memory_order_relaxed);
      listen_paused_until_ms_ = now_ms + SB_ACCEPT_PAUSE_MS;
      set_listener_events(0);
      return;
    }
    auto* c = new sb_conn();
    c->id = next_id_++;
    c->serial = next_serial_++;
    c->fd[0] = fd;
    c->accepted_ms = now_ms;
    bool ipv6 = false;
    c->ip = sb_format_ip(peer, &ipv6);
    conns_[c->id] = c;
    waiting_++;
    pending_.accepted.push_back({c->id, c->ip, ipv6});
  }
}

void sb_tcp_engine::connect_backend(sb_conn* c, int64_t now_ms) {
  c->state = sb_state::connecting;
  const sockaddr* addr = reinterpret_cast<const sockaddr*>(&options_.backend.addr);
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(c, errno);
    return;
  }
  c->fd[1] = fd;
  if (options_.no_delay) sb_set_no_delay(fd);
  int r;
  do {
    r = connect(fd, addr, options_.backend.len);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    fail(c, errno);
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = reinterpret_cast<uint64_t>(c) | 1;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
    fail(c, errno);
    return;
  }
  c->registered[1] = true;
  if (r == 0) {
    on_connected(c, now_ms);
  } else if (options_.connect_timeout_ms > 0) {
    deadlines_.push({now_ms + options_.connect_timeout_ms, c->serial, c->id, true});
  }
}

void sb_tcp_engine::on_connected(sb_conn* c, int64_t now_ms) {
  c->state = sb_state::established;
  c->connect_ms = now_ms - c->admitted_ms;
  c->last_active_ms = now_ms;
  epoll_event ev{};
  // EPOLLRDHUP: the peer's FIN wakes the reader even when no data came with it.
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = reinterpret_cast<uint64_t>(c);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd[0], &ev) < 0) {
    fail(c, errno);
    return;
  }
  c->registered[0] = true;
  if (options_.idle_timeout_ms > 0) deadlines_.push({now_ms + options_.idle_timeout_ms, c->serial, c->id, false});
  // Bytes may already be waiting (the client sent them while the backend was connecting): all readiness
  // flags start true, so the first pump finds them without waiting for an edge.
  pump(c);
}

void sb_tcp_engine::on_socket_event(sb_conn* c, int side, uint32_t events) {
  if (c->state == sb_state::connecting) {
    // Only the backend socket is registered while connecting.
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) err = ECONNREFUSED;
    if (err != 0) {
      fail(c, err);
      return;
    }
    on_connected(c, sb_now_ms());
    return;
  }
  if (events & EPOLLERR) {
    // An error (usually an RST) on a socket neither direction is about to touch, e.g. after the client's
    // half-close while the backend is quiet, would otherwise go unnoticed until the idle timeout.
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd[side], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      fail(c, err);
      return;
    }
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->dir[side].src_ready = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->dir[1 - side].dst_ready = true;
  pump(c);
}

bool sb_tcp_engine::pump(sb_conn* c) {
  bool more = false;
  uint64_t before = c->dir[0].moved + c->dir[1].moved;
  for (int d = 0; d < 2; d++) {
    int64_t budget = SB_TURN_BUDGET_BYTES;
    if (pump_direction(c, d, &budget)) more = true;
    if (c->done) return false;
  }
  if (c->dir[0].moved + c->dir[1].moved != before) c->last_active_ms = sb_now_ms();
  if (c->dir[0].shut && c->dir[1].shut) {
    finish(c, "closed", false);
    return false;
  }
  if (more && !c->queued_ready) {
    c->queued_ready = true;
    ready_.push_back(c);
  }
  return more;
}

// Moves what it can in one direction. Returns true when it stopped only because the budget ran out
// (the direction is still ready and must be pumped again this turn without waiting for an edge).
bool sb_tcp_engine::pump_direction(sb_conn* c, int d, int64_t* budget) {
  sb_direction& dir = c->dir[d];
  const int src = c->fd[d];
  const int dst = c->fd[1 - d];
  while (!dir.shut) {
    bool progressed = false;

    if (dir.in_pipe > 0 && dir.dst_ready) {
      ssize_t n = splice(dir.pipe_r, nullptr, dst, nullptr, dir.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        dir.in_pipe -= static_cast<size_t>(n);
        dir.moved += static_cast<uint64_t>(n);
        bytes_total_[d].fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        dir.pipe_full = false;
        *budget -= n;
        progressed = true;
      } else if (n < 0 && errno == EAGAIN) {
        dir.dst_ready = false;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        fail(c, n < 0 ? errno : EPIPE);
        return false;
      }
    }

    if (dir.in_pipe == 0 && dir.src_eof) {
      // The source's FIN goes on only after everything before it was delivered (half-close).
      if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN) {
        fail(c, errno);
        return false;
      }
      // ENOTCONN: the destination is already fully closed; its own direction reports what happened.
      dir.shut = true;
      give_pipe(&dir, true);
      return false;
    }

    if (!dir.src_eof && dir.src_ready && !dir.pipe_full && *budget > 0) {
      if (dir.pipe_r < 0) {
        int err = 0;
        if (!take_pipe(&dir, &err)) {
          fail(c, err);
          return false;
        }
      }
      ssize_t n = splice(src, nullptr, dir.pipe_w, nullptr, SB_SPLICE_CHUNK_BYTES,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        dir.in_pipe += static_cast<size_t>(n);
        *budget -= n;
        progressed = true;
      } else if (n == 0) {
        dir.src_eof = true;
        progressed = true;
      } else if (errno == EAGAIN) {
        // EAGAIN is ambiguous: no data in the socket, or no free slot in the pipe (a pipe's capacity
        // is counted in slots, and one skb fragment can take a whole slot, so the byte count cannot
        // tell). With an empty pipe it can only mean "no data"; otherwise assume "full" and try
        // again after the next successful write, which can never stall the direction.
        if (dir.in_pipe == 0) {
          dir.src_ready = false;
        } else {
          dir.pipe_full = true;
        }
      } else if (errno == EINTR) {
        continue;
      } else {
        fail(c, errno);
        return false;
      }
    }

    if (!progressed) break;
    if (*budget <= 0) {
      bool can_write = dir.in_pipe > 0 && dir.dst_ready;
      bool can_read = !dir.src_eof && dir.src_ready && !dir.pipe_full;
      bool can_shut = dir.in_pipe == 0 && dir.src_eof;
      if (can_write || can_read || can_shut) return true;
      break;
    }
  }
  // An empty pipe goes back to the pool: a direction holds one only while bytes are in flight.
  if (dir.pipe_r >= 0 && dir.in_pipe == 0) give_pipe(&dir, true);
  return false;
}

void sb_tcp_engine::fail(sb_conn* c, int err) {
  if (c->state != sb_state::established) {
    finish(c, err == ECONNREFUSED ? std::string("connect_refused") : "connect_error:" + sb_errno_name(err), true);
    return;
  }
  // A peer that resets, or vanishes while we write to it, is the "reset" outcome; anything else is
  // reported by errno name so operators can tell ETIMEDOUT (keepalive) from EHOSTUNREACH and so on.
  if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED) {
    finish(c, "reset", true);
  } else {
    finish(c, "error:" + sb_errno_name(err), true);
  }
}

void sb_tcp_engine::finish(sb_conn* c, const std::string& reason, bool reset) {
  if (c->done) return;
  c->done = true;
  for (int s = 0; s < 2; s++) {
    if (c->fd[s] < 0) continue;
    // The engine holds the only descriptor of each socket, so close() also drops its epoll registration.
    if (reset) sb_arm_reset(c->fd[s]);
    close(c->fd[s]);
    c->fd[s] = -1;
  }
  for (int d = 0; d < 2; d++) {
    if (c->dir[d].pipe_r >= 0) give_pipe(&c->dir[d], c->dir[d].in_pipe == 0);
  }
  conns_.erase(c->id);
  if (c->queued_ready) {
    ready_.erase(std::remove(ready_.begin(), ready_.end(), c), ready_.end());
    c->queued_ready = false;
  }
  graveyard_.push_back(c);
  if (c->admitted) {
    pending_.closed.push_back({c->id, c->ip, c->dir[0].moved, c->dir[1].moved, c->connect_ms,
                               sb_now_ms() - c->accepted_ms, reason});
  }
}

void sb_tcp_engine::discard(sb_conn* c) {
  // A client JS refused (or never judged before the engine stopped): never registered, never reported.
  sb_arm_reset(c->fd[0]);
  close(c->fd[0]);
  conns_.erase(c->id);
  delete c;
}

void sb_tcp_engine::check_deadlines(int64_t now_ms) {
  // Lazy deadlines: activity only bumps last_active_ms; an expired entry is checked against the
  // connection's state and pushed again if it is not due yet, so busy connections cost no heap work.
  while (!deadlines_.empty() && deadlines_.top().at_ms <= now_ms) {
    sb_deadline e = deadlines_.top();
    deadlines_.pop();
    auto it = conns_.find(e.id);
    if (it == conns_.end() || it->second->serial != e.serial) continue;
    sb_conn* c = it->second;
    if (e.connect) {
      // Once connected, the connect entry is moot: on_connected pushed the idle one.
      if (c->state == sb_state::connecting) finish(c, "connect_timeout", true);
    } else {
      int64_t deadline = c->last_active_ms + options_.idle_timeout_ms;
      if (deadline <= now_ms) {
        finish(c, "idle", false);
      } else {
        deadlines_.push({deadline, c->serial, c->id, false});
      }
    }
  }
}

int sb_tcp_engine::next_timeout_ms(int64_t now_ms) const {
  int64_t next = -1;
  if (!deadlines_.empty()) next = deadlines_.top().at_ms;
  if (listen_paused_until_ms_ >= 0 && (next < 0 || listen_paused_until_ms_ < next)) next = listen_paused_until_ms_;
  if (next < 0) return -1;
  int64_t wait = next - now_ms;
  if (wait < 0) return 0;
  return static_cast<int>(std::min<int64_t>(wait, INT_MAX));
}

bool sb_tcp_engine::take_pipe(sb_direction* dir, int* err) {
  if (!pool_.empty()) {
    sb_pipe p = pool_.back();
    pool_.pop_back();
    pipes_pooled_.store(pool_.size(), std::memory_order_relaxed);
    dir->pipe_r = p.r;
    dir->pipe_w = p.w;
  } else {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
      *err = errno;
      return false;
    }
    // Larger pipes mean fewer splice calls per byte; a refusal keeps the default 16 slots.
    if (pipe_size_ > 0) fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipe_size_));
    dir->pipe_r = fds[0];
    dir->pipe_w = fds[1];
  }
  pipes_in_use_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void sb_tcp_engine::give_pipe(sb_direction* dir, bool empty) {
  if (dir->pipe_r < 0) return;
  // A pipe with bytes left (the connection died mid-transfer) cannot be reused: close it.
  if (empty && pool_.size() < SB_PIPE_POOL_MAX) {
    pool_.push_back({dir->pipe_r, dir->pipe_w});
    pipes_pooled_.store(pool_.size(), std::memory_order_relaxed);
  } else {
    close(dir->pipe_r);
    close(dir->pipe_w);
  }
  dir->pipe_r = dir->pipe_w = -1;
  dir->in_pipe = 0;
  pipes_in_use_.fetch_sub(1, std::memory_order_relaxed);
}

void sb_tcp_engine::flush_events() {
  if (pending_.accepted.empty() && pending_.closed.empty()) return;
  sb_event_batch batch;
  std::swap(batch, pending_);
  sink_(std::move(batch));
}

void sb_tcp_engine::close_all(const char* reason) {
  // Admitted connections end with `reason`; clients still waiting for a verdict are left to JS while
  // the engine runs (a drain refuses them), and reset once it stops.
  bool running = !stopping_.load();
  std::vector<sb_conn*> all;
  all.reserve(conns_.size());
  for (auto& kv : conns_) all.push_back(kv.second);
  for (sb_conn* c : all) {
    if (c->admitted) {
      finish(c, reason, false);
    } else if (!running) {
      discard(c);
    }
  }
}
