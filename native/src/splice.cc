// The splice engine (see splice.h): an edge-triggered epoll loop on its own thread that forwards each
// connection pair A<->B with splice(2) socket -> pipe -> socket, propagates half-closes and resets,
// enforces idle timeouts, and reports every connection exactly once when it ends.
#include "splice.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

// epoll user data: the sb_conn pointer with the socket side (0 = A, 1 = B) in the low bit; 0 is the
// wake-up eventfd. sb_conn is at least 8-byte aligned, so the low bit is free.
constexpr uint64_t SB_WAKE_TAG = 0;

int64_t sb_now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

// One forwarding direction: bytes read from src = fd[d] into the pipe, written from the pipe to
// dst = fd[1 - d].
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

struct sb_conn {
  int64_t id = 0;
  uint64_t serial = 0;
  int fd[2] = {-1, -1};  // our duplicates of the sockets; libuv's own fds are never touched
  bool registered[2] = {false, false};
  uint32_t idle_ms = 0;
  int64_t last_active_ms = 0;
  sb_direction dir[2];
  bool done = false;
  bool queued_ready = false;
};

std::string sb_errno_name(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

sb_splice_engine::sb_splice_engine(sb_closed_sink sink, size_t pipe_size_bytes)
    : sink_(std::move(sink)), pipe_size_(pipe_size_bytes) {}

sb_splice_engine::~sb_splice_engine() {
  stop();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

sb_status sb_splice_engine::start() {
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
  pthread_setname_np(thread_.native_handle(), "sb-splice");
  started_ = true;
  return {};
}

static sb_status sb_check_socket(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return {errno, "fstat"};
  if (!S_ISSOCK(st.st_mode)) return {ENOTSOCK, "fd is not a socket", false};
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return {errno, "getsockopt(SO_TYPE)"};
  if (type != SOCK_STREAM) return {EPROTOTYPE, "socket is not a stream socket", false};
  // splice(2) only avoids blocking on the socket side when the socket itself is O_NONBLOCK
  // (SPLICE_F_NONBLOCK covers the pipe); libuv always sets it, so anything else is a caller bug.
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return {errno, "fcntl(F_GETFL)"};
  if ((flags & O_NONBLOCK) == 0) return {EINVAL, "socket is not non-blocking", false};
  sockaddr_storage peer;
  socklen_t plen = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) < 0) return {errno, "getpeername"};
  return {};
}

sb_status sb_splice_engine::add(int64_t id, int fd_a, int fd_b, uint32_t idle_timeout_ms) {
  if (!started_) return {EINVAL, "engine not started", false};
  if (fd_a < 0 || fd_b < 0) return {EBADF, "negative fd", false};
  if (fd_a == fd_b) return {EINVAL, "fdA and fdB are the same descriptor", false};
  for (int fd : {fd_a, fd_b}) {
    sb_status st = sb_check_socket(fd);
    if (!st.ok()) return st;
  }
  // Duplicates, so that the engine's descriptors stay valid until the engine itself closes them: if
  // libuv closes its fd first (a worker's environment teardown closes every handle before addon
  // cleanup hooks run), the number could be reused by an unrelated open() while this thread still
  // splices to it. With a duplicate, the socket simply lives until both sides let go.
  auto* c = new sb_conn();
  c->id = id;
  c->idle_ms = idle_timeout_ms;
  int fds[2] = {fd_a, fd_b};
  for (int s = 0; s < 2; s++) {
    c->fd[s] = fcntl(fds[s], F_DUPFD_CLOEXEC, 3);
    if (c->fd[s] < 0) {
      int err = errno;
      if (s == 1) close(c->fd[0]);
      delete c;
      return {err, "fcntl(F_DUPFD_CLOEXEC)"};
    }
  }
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    if (stopping_.load()) {
      close(c->fd[0]);
      close(c->fd[1]);
      delete c;
      return {ESHUTDOWN, "engine is closed", false};
    }
    commands_.push_back({sb_command::kind::add, c, id});
  }
  wake();
  return {};
}

void sb_splice_engine::remove(int64_t id) {
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    if (stopping_.load()) return;
    commands_.push_back({sb_command::kind::remove, nullptr, id});
  }
  wake();
}

void sb_splice_engine::stop() {
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

void sb_splice_engine::wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero, so the thread is going to wake anyway.
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;
}

void sb_splice_engine::run() {
  try {
    loop();
  } catch (...) {
    // Only allocation failure can get here; give every connection back to JS rather than leave the
    // sockets in limbo.
    close_all("error:ENOMEM");
  }
  // From here on add() refuses (ESHUTDOWN), also when the loop ended on its own after an error, so
  // that no pair is ever queued to a thread that will not report it.
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    stopping_.store(true);
  }
  // Adds still queued were never attached, but JS counts them as owned: report them like the rest.
  take_commands(false);
  close_all("removed");
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

void sb_splice_engine::loop() {
  epoll_event events[SB_EPOLL_BATCH];
  while (!stopping_.load(std::memory_order_relaxed)) {
    int timeout = ready_.empty() ? next_timeout_ms(sb_now_ms()) : 0;
    int n = epoll_wait(epoll_fd_, events, SB_EPOLL_BATCH, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      close_all(("error:" + sb_errno_name(errno)).c_str());
      return;
    }
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == SB_WAKE_TAG) {
        uint64_t count;
        ssize_t r = read(wake_fd_, &count, sizeof(count));
        (void)r;
        take_commands(true);
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
    sweep_idle(sb_now_ms());
    flush_events();
    for (sb_conn* c : graveyard_) delete c;
    graveyard_.clear();
  }
}

void sb_splice_engine::take_commands(bool attach_adds) {
  std::vector<sb_command> commands;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    commands.swap(commands_);
  }
  for (sb_command& cmd : commands) {
    if (cmd.what == sb_command::kind::add) {
      if (attach_adds) {
        attach(cmd.conn);
      } else {
        conns_[cmd.conn->id] = cmd.conn;
        finish(cmd.conn, "removed");
      }
    } else {
      auto it = conns_.find(cmd.id);
      if (it != conns_.end()) finish(it->second, "removed");
    }
  }
}

void sb_splice_engine::attach(sb_conn* c) {
  c->serial = next_serial_++;
  c->last_active_ms = sb_now_ms();
  conns_[c->id] = c;
  for (int s = 0; s < 2; s++) {
    epoll_event ev{};
    // EPOLLRDHUP: the peer's FIN wakes the reader even when no data came with it.
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = reinterpret_cast<uint64_t>(c) | static_cast<uint64_t>(s);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd[s], &ev) < 0) {
      fail(c, errno);
      return;
    }
    c->registered[s] = true;
  }
  if (c->idle_ms > 0) idle_.push({c->last_active_ms + c->idle_ms, c->serial, c->id});
  // Bytes may already be waiting (they arrived while JS was connecting upstream): all readiness
  // flags start true, so the first pump finds them without waiting for an edge.
  pump(c);
}

void sb_splice_engine::on_socket_event(sb_conn* c, int side, uint32_t events) {
  if (events & EPOLLERR) {
    // An error (usually an RST) on a socket neither direction is about to touch, e.g. after A's
    // half-close while B is quiet, would otherwise go unnoticed until the idle timeout.
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

bool sb_splice_engine::pump(sb_conn* c) {
  bool more = false;
  int64_t before = static_cast<int64_t>(c->dir[0].moved + c->dir[1].moved);
  for (int d = 0; d < 2; d++) {
    int64_t budget = SB_TURN_BUDGET_BYTES;
    if (pump_direction(c, d, &budget)) more = true;
    if (c->done) return false;
  }
  if (static_cast<int64_t>(c->dir[0].moved + c->dir[1].moved) != before) c->last_active_ms = sb_now_ms();
  if (c->dir[0].shut && c->dir[1].shut) {
    finish(c, "closed");
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
bool sb_splice_engine::pump_direction(sb_conn* c, int d, int64_t* budget) {
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

void sb_splice_engine::fail(sb_conn* c, int err) {
  // A peer that resets, or vanishes while we write to it, is the "reset" outcome; anything else is
  // reported by errno name so operators can tell ETIMEDOUT (keepalive) from EHOSTUNREACH and so on.
  if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED) {
    finish(c, "reset");
  } else {
    finish(c, "error:" + sb_errno_name(err));
  }
}

void sb_splice_engine::finish(sb_conn* c, const std::string& reason) {
  if (c->done) return;
  c->done = true;
  for (int s = 0; s < 2; s++) {
    // Explicit removal: closing our duplicate does not drop the registration while libuv's fd still
    // refers to the same open file description.
    if (c->registered[s]) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd[s], nullptr);
    if (c->fd[s] >= 0) close(c->fd[s]);
    c->fd[s] = -1;
  }
  for (int d = 0; d < 2; d++) {
    if (c->dir[d].pipe_r >= 0) give_pipe(&c->dir[d], c->dir[d].in_pipe == 0);
  }
  auto it = conns_.find(c->id);
  if (it != conns_.end() && it->second == c) conns_.erase(it);
  if (c->queued_ready) {
    ready_.erase(std::remove(ready_.begin(), ready_.end(), c), ready_.end());
    c->queued_ready = false;
  }
  graveyard_.push_back(c);
  pending_.push_back({c->id, c->dir[0].moved, c->dir[1].moved, reason});
}

void sb_splice_engine::sweep_idle(int64_t now_ms) {
  // Lazy deadlines: activity only bumps last_active_ms; an expired entry is checked against it and
  // pushed again if the connection was active meanwhile, so busy connections cost no heap work.
  while (!idle_.empty() && idle_.top().deadline_ms <= now_ms) {
    sb_idle_entry e = idle_.top();
    idle_.pop();
    auto it = conns_.find(e.id);
    if (it == conns_.end() || it->second->serial != e.serial) continue;
    sb_conn* c = it->second;
    int64_t deadline = c->last_active_ms + c->idle_ms;
    if (deadline <= now_ms) {
      finish(c, "idle");
    } else {
      idle_.push({deadline, c->serial, c->id});
    }
  }
}

int sb_splice_engine::next_timeout_ms(int64_t now_ms) const {
  if (idle_.empty()) return -1;
  int64_t wait = idle_.top().deadline_ms - now_ms;
  if (wait < 0) return 0;
  return static_cast<int>(std::min<int64_t>(wait, INT_MAX));
}

bool sb_splice_engine::take_pipe(sb_direction* dir, int* err) {
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

void sb_splice_engine::give_pipe(sb_direction* dir, bool empty) {
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

void sb_splice_engine::flush_events() {
  if (pending_.empty()) return;
  std::vector<sb_closed_event> batch;
  batch.swap(pending_);
  sink_(std::move(batch));
}

void sb_splice_engine::close_all(const char* reason) {
  std::vector<sb_conn*> all;
  all.reserve(conns_.size());
  for (auto& kv : conns_) all.push_back(kv.second);
  for (sb_conn* c : all) finish(c, reason);
}
