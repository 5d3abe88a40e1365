// Starting a child process without fork(): procSpawn uses posix_spawn, which glibc does
// with clone(CLONE_VM | CLONE_VFORK), so its cost does not grow with this process's
// memory. libuv (Node's spawn) forks, and a fork copies the page tables of the whole
// process: 7 ms at Node's bare 46 MB, 15–25 ms at 150 MB on the project machine, paid on
// the JS thread for every CNI IPAM call a long-running server makes. The child gets
// three pipes as stdin/stdout/stderr, default signal dispositions, an empty signal mask,
// no other descriptors, and optionally its own session (so a timeout can kill its whole
// process group). procReap collects its status without blocking.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sched.h>
#include <poll.h>
#include <sys/file.h>
#include <signal.h>
#include <time.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "addon/glue.h"

namespace vfpglue {

namespace {

// The errno's symbolic name, as Node's own spawn errors carry it in `code`.
const char *ErrnoName(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ETXTBSY: return "ETXTBSY";
    case ENOEXEC: return "ENOEXEC";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EAGAIN: return "EAGAIN";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case E2BIG: return "E2BIG";
    default: return "EIO";
  }
}

Napi::Value ThrowSys(Napi::Env env, const std::string &what, int e) {
  Napi::Error err = Napi::Error::New(env, what + ": " + strerror(e));
  err.Set("code", Napi::String::New(env, ErrnoName(e)));
  err.Set("errno", Napi::Number::New(env, -e));
  err.ThrowAsJavaScriptException();
  return Napi::Value();
}

bool ToStrings(Napi::Env env, Napi::Value v, const std::string &name, std::vector<std::string> *out) {
  if (!v.IsArray()) {
    ThrowType(env, name + " must be an array of strings");
    return false;
  }
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s;
    if (!a.Get(i).UnwrapTo(&s) || !s.IsString()) {
      ThrowType(env, name + "[" + std::to_string(i) + "] must be a string");
      return false;
    }
    std::string str = s.As<Napi::String>().Utf8Value();
    if (str.find('\0') != std::string::npos) {
      ThrowType(env, name + "[" + std::to_string(i) + "] contains a NUL byte");
      return false;
    }
    out->push_back(std::move(str));
  }
  return true;
}

std::vector<char *> CArgv(std::vector<std::string> &v) {
  std::vector<char *> p;
  for (auto &s : v) p.push_back(&s[0]);
  p.push_back(nullptr);
  return p;
}

// posix_spawn of FILE (a PATH search when it has no "/") with pipes for 0, 1 and 2.
// Returns 0 and our ends (close-on-exec) in fds[0] (write), fds[1], fds[2] (read), or an
// errno with nothing left open.
int SpawnPiped(const std::string &file, std::vector<std::string> &argv, std::vector<std::string> *envv, bool setsid,
               pid_t *pid, int ours[3]) {
  int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  for (auto &p : fds) {
    if (pipe2(p, O_CLOEXEC) < 0) {
      int e = errno;
      for (auto &q : fds)
        for (int fd : q)
          if (fd >= 0) close(fd);
      return e;
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  // The child's ends become 0, 1, 2 (dup2 clears close-on-exec); everything else closes.
  posix_spawn_file_actions_adddup2(&fa, fds[0][0], 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1][1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[2][1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);  // Node ignores SIGPIPE; a child must not inherit that
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (setsid) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(&attr, flags);

  std::vector<char *> cargv = CArgv(argv), cenv;
  if (envv) cenv = CArgv(*envv);
  char **env = envv ? cenv.data() : environ;
  int rc = file.find('/') == std::string::npos ? posix_spawnp(pid, file.c_str(), &fa, &attr, cargv.data(), env)
                                               : posix_spawn(pid, file.c_str(), &fa, &attr, cargv.data(), env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(fds[0][0]);
  close(fds[1][1]);
  close(fds[2][1]);
  if (rc != 0) {
    close(fds[0][1]);
    close(fds[1][0]);
    close(fds[2][0]);
    return rc;
  }
  ours[0] = fds[0][1];
  ours[1] = fds[1][0];
  ours[2] = fds[2][0];
  return 0;
}

// procSpawn(file, argv, env, setsid) -> { pid, stdin, stdout, stderr } (our ends of the
// pipes, close-on-exec). Throws an Error with code ENOENT/EACCES/ETXTBSY/… when the
// program cannot be started.
Napi::Value ProcSpawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString()) return ThrowType(env, "procSpawn(file, argv, env, setsid): file must be a string");
  std::string file = info[0].As<Napi::String>().Utf8Value();
  std::vector<std::string> argv, envv;
  bool setsid = false;
  if (!ToStrings(env, info[1], "argv", &argv) || !ToStrings(env, info[2], "env", &envv) || !ToBool(env, info[3], "setsid", &setsid))
    return Napi::Value();
  if (argv.empty()) argv.push_back(file);
  pid_t pid;
  int fds[3];
  int rc = SpawnPiped(file, argv, &envv, setsid, &pid, fds);
  if (rc) return ThrowSys(env, "spawn " + file, rc);
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, pid));
  o.Set("stdin", Napi::Number::New(env, fds[0]));
  o.Set("stdout", Napi::Number::New(env, fds[1]));
  o.Set("stderr", Napi::Number::New(env, fds[2]));
  return o;
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// procRunSync(file, argv, input, timeoutMs) -> { status, signal, stdout, stderr, timedOut }
// with this process's environment, blocking until the program exits (killed after
// timeoutMs). Throws as procSpawn when it cannot be started.
Napi::Value ProcRunSync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[2].IsString())
    return ThrowType(env, "procRunSync(file, argv, input, timeoutMs): file and input must be strings");
  std::string file = info[0].As<Napi::String>().Utf8Value();
  std::string input = info[2].As<Napi::String>().Utf8Value();
  std::vector<std::string> argv;
  double timeout;
  if (!ToStrings(env, info[1], "argv", &argv) || !ToInt(env, info[3], "timeoutMs", 1, 86400000, &timeout)) return Napi::Value();
  if (argv.empty()) argv.push_back(file);
  pid_t pid;
  int fds[3];
  int rc = SpawnPiped(file, argv, nullptr, false, &pid, fds);
  if (rc) return ThrowSys(env, "spawn " + file, rc);
  std::string out[2];
  size_t written = 0;
  if (input.empty()) {
    close(fds[0]);
    fds[0] = -1;
  } else {
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
  }
  const int64_t deadline = NowMs() + static_cast<int64_t>(timeout);
  bool timed_out = false;
  char buf[65536];
  while (fds[0] >= 0 || fds[1] >= 0 || fds[2] >= 0) {
    struct pollfd pf[3];
    int n = 0, which[3];
    if (fds[0] >= 0) pf[n] = {fds[0], POLLOUT, 0}, which[n++] = 0;
    for (int k = 1; k < 3; k++)
      if (fds[k] >= 0) pf[n] = {fds[k], POLLIN, 0}, which[n++] = k;
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    int r = poll(pf, n, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int i = 0; i < n; i++) {
      if (!pf[i].revents) continue;
      int k = which[i];
      if (k == 0) {
        ssize_t w = write(fds[0], input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size() || (pf[i].revents & (POLLERR | POLLHUP))) {
          close(fds[0]);
          fds[0] = -1;
        }
      } else {
        ssize_t got = read(fds[k], buf, sizeof(buf));
        if (got > 0) {
          if (out[k - 1].size() < (16u << 20)) out[k - 1].append(buf, static_cast<size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          close(fds[k]);
          fds[k] = -1;
        }
      }
    }
  }
  for (int &fd : fds)
    if (fd >= 0) close(fd);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", WIFEXITED(st) ? Napi::Number::New(env, WEXITSTATUS(st)) : env.Null());
  o.Set("signal", WIFSIGNALED(st) ? Napi::Number::New(env, WTERMSIG(st)) : env.Null());
  o.Set("stdout", Napi::String::New(env, out[0]));
  o.Set("stderr", Napi::String::New(env, out[1]));
  o.Set("timedOut", Napi::Boolean::New(env, timed_out));
  return o;
}

// procReap(pid) -> null while the child runs, else { status, signal } (status null when
// a signal ended it). Throws ECHILD for a pid that is not our unreaped child.
Napi::Value ProcReap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double pidd;
  if (info.Length() < 1 || !ToInt(env, info[0], "pid", 1, 4194304, &pidd)) return Napi::Value();
  int st = 0;
  pid_t r;
  do r = waitpid(static_cast<pid_t>(pidd), &st, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowSys(env, "procReap(" + std::to_string(static_cast<long>(pidd)) + ")", errno);
  if (r == 0) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", WIFEXITED(st) ? Napi::Number::New(env, WEXITSTATUS(st)) : env.Null());
  o.Set("signal", WIFSIGNALED(st) ? Napi::Number::New(env, WTERMSIG(st)) : env.Null());
  return o;
}

// lockOpen(path) -> fd: the lock file (created 0600), close-on-exec. Never through a
// symlink (its holder writes its pid into the file: a link would have it truncate
// whatever the link names), and only a regular file (a directory or a FIFO there is no
// lock): ELOOP or EINVAL, which the caller names.
Napi::Value LockOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "lockOpen(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  if (fd < 0) return ThrowSys(env, "open " + path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return ThrowSys(env, "fstat " + path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return ThrowSys(env, "open " + path + " (not a regular file)", EINVAL);
  }
  return Napi::Number::New(env, fd);
}

// The blocking flock of lockTake, on a thread of its own so that the caller can give up
// after a timeout; a lock that arrives after that is let go at once.
struct LockWait {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false, abandoned = false;
  int err = 0;
};

// lockTake(fd, timeoutMs[, shared]) -> 0, or -errno (-ETIMEDOUT when another holder kept
// it that long; -EWOULDBLOCK at once when timeoutMs is 0 and another holds it). An
// exclusive flock (shared when `shared` is true): waiters queue in the kernel and wake
// when the holder lets go (or dies: the kernel drops a dead process's locks), with no
// sleeping and polling.
Napi::Value LockTake(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double fdd, timeout;
  if (info.Length() < 2 || !ToInt(env, info[0], "fd", 0, 1 << 30, &fdd) || !ToInt(env, info[1], "timeoutMs", 0, 86400000, &timeout))
    return Napi::Value();
  int fd = static_cast<int>(fdd);
  const int op = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value() ? LOCK_SH : LOCK_EX;
  if (flock(fd, op | LOCK_NB) == 0) return Napi::Number::New(env, 0);
  if (errno != EWOULDBLOCK || timeout == 0) return Napi::Number::New(env, -errno);
  // The thread works on its own descriptor of the same open file (the lock belongs to
  // that, not to a descriptor number), so a caller that gave up and closed fd meanwhile
  // cannot have the number reused under it.
  int mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (mine < 0) return Napi::Number::New(env, -errno);
  auto w = std::make_shared<LockWait>();
  std::thread([w, mine, op] {
    int r;
    do r = flock(mine, op);
    while (r < 0 && errno == EINTR);
    std::lock_guard<std::mutex> g(w->mu);
    w->err = r < 0 ? errno : 0;
    if (w->abandoned && r == 0) flock(mine, LOCK_UN);
    close(mine);
    w->done = true;
    w->cv.notify_one();
  }).detach();
  std::unique_lock<std::mutex> g(w->mu);
  if (!w->cv.wait_for(g, std::chrono::milliseconds(static_cast<int64_t>(timeout)), [&] { return w->done; })) {
    w->abandoned = true;
    return Napi::Number::New(env, -ETIMEDOUT);
  }
  return Napi::Number::New(env, -w->err);
}

// lockGive(fd): lets the lock go.
Napi::Value LockGive(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double fdd;
  if (info.Length() < 1 || !ToInt(env, info[0], "fd", 0, 1 << 30, &fdd)) return Napi::Value();
  flock(static_cast<int>(fdd), LOCK_UN);
  return env.Undefined();
}

// cpusUsable(): the CPUs a thread of this process can be pinned to. That is the cgroup's
// cpuset (a container's CPU limit), not this process's affinity mask (taskset): a thread
// may be pinned outside the mask it inherited, never outside its cpuset. Probed on a
// thread of its own, so the caller's mask is never touched.
Napi::Value CpusUsable(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  long conf = sysconf(_SC_NPROCESSORS_CONF);
  int n = conf > 0 && conf < CPU_SETSIZE ? static_cast<int>(conf) : CPU_SETSIZE;
  std::vector<int> ok;
  std::thread([&] {
    for (int c = 0; c < n; c++) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(c, &set);
      if (sched_setaffinity(0, sizeof set, &set) == 0) ok.push_back(c);
    }
  }).join();
  Napi::Array out = Napi::Array::New(env, ok.size());
  for (size_t i = 0; i < ok.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, ok[i]));
  return out;
}

}  // namespace

void RegisterProc(Napi::Env env, Napi::Object exports) {
  static const ExportFn fns[] = {{"procSpawn", ProcSpawn}, {"procReap", ProcReap}, {"procRunSync", ProcRunSync},
                                 {"lockOpen", LockOpen},   {"lockTake", LockTake}, {"lockGive", LockGive},
                                 {"cpusUsable", CpusUsable}};
  ExportAll(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace vfpglue
