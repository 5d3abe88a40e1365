// node-addon-api glue for the data plane (native/worker/dp.h) and the I/O backends:
// argument conversion, handle lifetimes and the zero-copy counters view. The daemon
// (src/dataplane) owns the policy; nothing here decides anything.
#include "addon/glue.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "io/memory.h"
#include "worker/dp.h"
// A backend is glued in when the build enabled it and its header exists.
#if defined(VFP_HAVE_AFPACKET) && __has_include("io/afpacket.h")
#include "io/afpacket.h"
#define DP_AFPACKET 1
#endif
#if defined(VFP_HAVE_AFXDP) && __has_include("io/afxdp.h")
#include "io/afxdp.h"
#define DP_AFXDP 1
#endif
#if defined(VFP_HAVE_DPDK) && __has_include("io/dpdk.h")
#include "io/dpdk.h"
#define DP_DPDK 1
#endif

namespace vfpglue {
namespace {

#ifdef DP_DPDK
// Workers are plain pthreads: registered, DPDK gives them mempool caches (without, every
// mbuf alloc/free goes to the shared ring). A failed registration only costs speed.
void DpdkThreadInit() { (void)vfp_dpdk__thread_register(); }
void DpdkThreadFini() { vfp_dpdk__thread_unregister(); }
#endif

const napi_type_tag kDpTag = {0x7666706c616e6504ull, 0x6470000000000001ull};

// The data plane and the ArrayBuffer over its counters: whichever the GC finalizes last
// frees it; dpStop() stops threads and closes ports at once. Finalizers run on the JS
// thread, so a plain int will do.
struct DpH {
  vfp_dp *dp;
  int refs;
  Napi::Reference<Napi::Value> view;
};

void DpUnref(DpH *h) {
  if (--h->refs) return;
  vfp_dp__destroy(h->dp, 0);
  h->dp = nullptr;
}

void DpFinalize(Napi::Env, DpH *h) {
  h->view.Reset();
  DpUnref(h);
  if (!h->refs) delete h;
}

void DpViewFinalize(napi_env, void *, void *hint) {
  DpH *h = static_cast<DpH *>(hint);
  DpUnref(h);
  if (!h->refs) delete h;
}

bool ToDp(Napi::Env env, Napi::Value v, DpH **out) {
  if (!v.IsExternal() || !v.As<Napi::External<DpH>>().CheckTypeTag(&kDpTag)) {
    if (!Pending(env)) ThrowType(env, "dp must be a data plane handle");
    return false;
  }
  *out = v.As<Napi::External<DpH>>().Data();
  if (!(*out)->dp) {
    Napi::Error::New(env, "the data plane has been destroyed").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value ThrowMsg(Napi::Env env, const char *err, const std::string &what, int neg) {
  if (err && err[0]) {
    Napi::Error e = Napi::Error::New(env, err);
    e.Set("errno", Napi::Number::New(env, neg));
    e.ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return ThrowErrno(env, what, neg);
}

// Optional property: absent or undefined leaves *out alone.
bool Opt(Napi::Env env, Napi::Value obj, const char *key, Napi::Value *out) {
  Napi::Value v;
  if (!GetProp(env, obj, key, &v)) return false;
  *out = v;
  return true;
}
bool Has(const Napi::Value &v) { return !v.IsUndefined() && !v.IsNull(); }

template <typename T>
bool OptUint(Napi::Env env, Napi::Value obj, const char *key, double min, double max, T *out) {
  Napi::Value v;
  if (!Opt(env, obj, key, &v)) return false;
  if (!Has(v)) return true;
  return ToUint(env, v, std::string("opts.") + key, min, max, out);
}

bool OptString(Napi::Env env, Napi::Value obj, const char *key, std::string *out, bool *present) {
  Napi::Value v;
  if (!Opt(env, obj, key, &v)) return false;
  *present = Has(v);
  if (!*present) return true;
  if (!v.IsString()) {
    ThrowType(env, std::string("opts.") + key + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

// dpCreate({workers, cpus?, burst?, idleSpins?, idleSleepUs?, learnCapacity?, learnPerVni?, neighReachableMs?, floodPps?, scratchBufs?, headroom?})
Napi::Value DpCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Value o = info[0];
  if (!o.IsObject()) return ThrowType(env, "opts must be an object");
  vfp_dp_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.n_workers = 1;
  opts.idle_spins = 64;
  if (!OptUint(env, o, "workers", 1, VFP_DP_MAX_WORKERS, &opts.n_workers) ||
      !OptUint(env, o, "burst", 1, VFP_MAX_BURST, &opts.burst) ||
      !OptUint(env, o, "idleSpins", 0, 1e9, &opts.idle_spins) ||
      !OptUint(env, o, "idleSleepUs", 0, 1e7, &opts.idle_sleep_us) ||
      !OptUint(env, o, "learnCapacity", 16, 1 << 24, &opts.learn_capacity) ||
      !OptUint(env, o, "learnPerVni", 0, 1 << 24, &opts.learn_per_vni) ||
      !OptUint(env, o, "neighReachableMs", 1000, 3600000, &opts.neigh_reachable_ms) ||
      !OptUint(env, o, "floodPps", 0, 100000000, &opts.flood_pps) ||
      !OptUint(env, o, "scratchBufs", 16, 1 << 20, &opts.scratch_bufs) ||
      !OptUint(env, o, "headroom", 64, 1024, &opts.headroom))
    return Napi::Value();
  std::vector<int> cpus(opts.n_workers, -1);
  Napi::Value cv;
  if (!Opt(env, o, "cpus", &cv)) return Napi::Value();
  if (Has(cv)) {
    if (!cv.IsArray() || cv.As<Napi::Array>().Length() != opts.n_workers)
      return ThrowType(env, "opts.cpus must be an array with one CPU (or -1) per worker");
    for (uint32_t i = 0; i < opts.n_workers; i++) {
      Napi::Value e;
      double d;
      if (!cv.As<Napi::Array>().Get(i).UnwrapTo(&e) || !ToInt(env, e, "opts.cpus[" + std::to_string(i) + "]", -1, 4095, &d))
        return Napi::Value();
      cpus[i] = static_cast<int>(d);
    }
  }
  opts.cpus = cpus.data();
#ifdef DP_DPDK
  if (vfp_dpdk__initialized()) {
    opts.thread_init = DpdkThreadInit;
    opts.thread_fini = DpdkThreadFini;
  }
#endif
  char err[512] = "";
  DpH *h = new DpH();
  h->refs = 1;
  int rc = vfp_dp__create(&h->dp, &opts, &kAlloc, err, sizeof err);
  if (rc) {
    delete h;
    return ThrowMsg(env, err, "dpCreate", rc);
  }
  auto ext = Napi::External<DpH>::New(env, h, DpFinalize);
  if (Pending(env)) return Napi::Value();
  ext.TypeTag(&kDpTag);
  return ext;
}

Napi::Value DpStop(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  uint32_t drain = 0;
  if (!ToDp(env, info[0], &h)) return Napi::Value();
  if (info.Length() > 1 && !ToUint(env, info[1], "drainMs", 0, 60000, &drain)) return Napi::Value();
  vfp_dp__stop(h->dp, drain);
  return env.Undefined();
}

// ---- ports

Napi::Value PortResult(Napi::Env env, uint16_t slot, Napi::Object extra) {
  extra.Set("slot", Napi::Number::New(env, slot));
  return extra;
}

int AddPort(Napi::Env env, DpH *h, vfp_port *p, const std::string &name, uint16_t *slot) {
  char err[512] = "";
  int rc = vfp_dp__port_add(h->dp, p, name.c_str(), slot, err, sizeof err);
  if (rc) {
    vfp_port__close(p);
    ThrowMsg(env, err, "dpPortAdd", rc);
  }
  return rc;
}

// ---- ports on kernel netdevs (afpacket, afxdp)

// Opening one waits for RCU grace periods in the kernel (a packet ring's setup, an XDP
// or tcx attach): tens of milliseconds, which a start restoring hundreds of attachments
// paid one after another. The options are read on the JS thread (ParseKernelPort); the
// open runs on any thread (Run: the backends enter a netns on a thread of their own);
// the port joins the data plane on the JS thread (FinishKernelPort).
struct KernelPortJob {
  std::string backend, name, ifname, netns;
  bool has_ns = false;
#ifdef DP_AFPACKET
  vfp_afpacket_opts ao;
#endif
#ifdef DP_AFXDP
  vfp_afxdp_opts xo;
#endif
  vfp_port *p = nullptr;
  int rc = -ENOTSUP;
  char err[512] = "";

  void Run() {
#ifdef DP_AFPACKET
    if (backend == "afpacket") {
      ao.ifname = ifname.c_str();
      ao.netns = has_ns ? netns.c_str() : nullptr;
      rc = vfp_afpacket_port__create(&p, &ao, &kAlloc, err, sizeof err);
    }
#endif
#ifdef DP_AFXDP
    if (backend == "afxdp") {
      xo.ifname = ifname.c_str();
      xo.netns = has_ns ? netns.c_str() : nullptr;
      rc = vfp_afxdp_port__create(&p, &xo, &kAlloc, err, sizeof err);
    }
#endif
  }
};

bool ParseKernelPort(Napi::Env env, const std::string &backend, const std::string &name, Napi::Value o, KernelPortJob *j) {
  j->backend = backend;
  j->name = name;
  bool has_if = false;
  if (!OptString(env, o, "ifname", &j->ifname, &has_if) || !OptString(env, o, "netns", &j->netns, &j->has_ns)) return false;
  if (!has_if) {
    ThrowType(env, "opts.ifname is required for the " + backend + " backend");
    return false;
  }
#ifdef DP_AFPACKET
  if (backend == "afpacket") {
    vfp_afpacket_opts &ao = j->ao;
    vfp_afpacket_opts__defaults(&ao);
    uint32_t qb = ao.qdisc_bypass ? 1 : 0, sd = 0;
    if (!OptUint(env, o, "headroom", 64, 4096, &ao.headroom) || !OptUint(env, o, "frameSize", 0, 65536, &ao.frame_size) ||
        !OptUint(env, o, "blockSize", 0, 1 << 26, &ao.rx_block_size) || !OptUint(env, o, "blocks", 0, 4096, &ao.rx_blocks) ||
        !OptUint(env, o, "txFrames", 0, 1 << 20, &ao.tx_frames) || !OptUint(env, o, "qdiscBypass", 0, 1, &qb) ||
        !OptUint(env, o, "ring", 2, 3, &ao.rx_ring_version) || !OptUint(env, o, "stackDrop", 0, 1, &sd) ||
        !OptUint(env, o, "queues", 1, VFP_AFPACKET_MAX_QUEUES, &ao.queues))
      return false;
    ao.qdisc_bypass = static_cast<int>(qb);
    ao.stack_drop = static_cast<int>(sd);
  }
#endif
#ifdef DP_AFXDP
  if (backend == "afxdp") {
    vfp_afxdp_opts &xo = j->xo;
    vfp_afxdp_opts__defaults(&xo);
    std::string mode, copy;
    bool hm = false, hc = false;
    uint32_t nw = xo.need_wakeup ? 1 : 0;
    if (!OptUint(env, o, "queueId", 0, 1024, &xo.queue_id) || !OptUint(env, o, "queues", 0, 64, &xo.n_queues) ||
        !OptUint(env, o, "frameSize", 2048, 4096, &xo.frame_size) || !OptUint(env, o, "frames", 64, 1 << 20, &xo.n_frames) ||
        !OptUint(env, o, "ringSize", 64, 1 << 16, &xo.ring_size) || !OptUint(env, o, "headroom", 0, 1024, &xo.headroom) ||
        !OptUint(env, o, "needWakeup", 0, 1, &nw) || !OptString(env, o, "mode", &mode, &hm) ||
        !OptString(env, o, "copy", &copy, &hc))
      return false;
    xo.need_wakeup = static_cast<int>(nw);
    if (hm) {
      if (mode == "auto") xo.mode = VFP_XDP_MODE_AUTO;
      else if (mode == "native") xo.mode = VFP_XDP_MODE_NATIVE;
      else if (mode == "skb") xo.mode = VFP_XDP_MODE_SKB;
      else {
        ThrowRange(env, "opts.mode " + mode + " is not one of auto, native, skb");
        return false;
      }
    }
    if (hc) {
      if (copy == "auto") xo.copy = VFP_XDP_COPY_AUTO;
      else if (copy == "copy") xo.copy = VFP_XDP_COPY;
      else if (copy == "zerocopy") xo.copy = VFP_XDP_ZEROCOPY;
      else {
        ThrowRange(env, "opts.copy " + copy + " is not one of auto, copy, zerocopy");
        return false;
      }
    }
  }
#endif
  return true;
}

// The opened port into the data plane, and what the caller learns of it; throws (and
// closes the port) on failure.
Napi::Value FinishKernelPort(Napi::Env env, DpH *h, KernelPortJob *j) {
  Napi::Object extra = Napi::Object::New(env);
  extra.Set("backend", Napi::String::New(env, j->backend));
#ifdef DP_AFXDP
  if (j->backend == "afxdp" && !j->rc) {
    vfp_afxdp_info xi;
    vfp_afxdp_port__info(j->p, &xi);
    extra.Set("mode", Napi::String::New(env, xi.mode == VFP_XDP_MODE_NATIVE ? "native" : "skb"));
    extra.Set("zerocopy", Napi::Boolean::New(env, xi.zerocopy != 0));
    extra.Set("needWakeup", Napi::Boolean::New(env, xi.need_wakeup != 0));
    extra.Set("headroom", Napi::Number::New(env, xi.headroom));
    extra.Set("frames", Napi::Number::New(env, xi.frames));
    extra.Set("maxFrame", Napi::Number::New(env, xi.max_frame));
    if (j->err[0]) extra.Set("notice", Napi::String::New(env, j->err));  // a fallback taken, a stale program removed
    j->err[0] = 0;
  }
#endif
  if (j->rc == -ENOTSUP && !j->err[0]) {
    snprintf(j->err, sizeof j->err, "the %s backend is not built into this addon; `vfplane doctor` says why and how to "
             "build it", j->backend.c_str());
  }
  if (j->rc) return ThrowMsg(env, j->err, "dpPortOpen " + j->backend, j->rc);
  if (!h->dp) {
    vfp_port__close(j->p);
    Napi::Error::New(env, "the data plane has been destroyed").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  uint16_t slot;
  if (AddPort(env, h, j->p, j->name, &slot)) return Napi::Value();
  extra.Set("queues", Napi::Number::New(env, j->p->n_queues));
  return PortResult(env, slot, extra);
}

// dpPortOpenAsync(dp, backend, opts, name) → Promise<{slot, ...}>: dpPortOpen of an
// afpacket or afxdp port, opened on a thread of its own so that many open at once (their
// grace periods overlap) and the JS thread keeps serving meanwhile. The handle is held
// until the port has joined it (or been closed).
//
// The open ends one of two ways, both on the JS thread: its completion call (the port
// joins the data plane, the promise settles), or, when the env goes away first (a worker
// thread terminated with opens under way), the env's cleanup hook: it waits for the
// open's thread and closes what it opened, so no XDP program or packet ring outlives the
// env, and nothing touches JS that can no longer run. The completion call still comes
// after that (with or without an env) and only frees the record.
struct AsyncOpen {
  KernelPortJob job;
  DpH *h = nullptr;
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  pthread_t th{};
  bool queued = false;     // the thread handed its completion call over
  bool abandoned = false;  // closed by the cleanup hook; the completion call only frees
};

// Waits for the open's thread, closes what it opened and drops the hold on the handle.
void AbandonOpen(AsyncOpen *a) {
  pthread_join(a->th, nullptr);
  if (!a->job.rc && a->job.p) vfp_port__close(a->job.p);
  a->job.p = nullptr;
  DpUnref(a->h);
  if (!a->h->refs) delete a->h;
  a->abandoned = true;
}

// The env's cleanup hook: registered after the open's threadsafe function, so it runs
// before that function's own (hooks run last-registered first) and the completion call,
// already queued, is still to come.
void AsyncOpenCleanup(void *arg) {
  AsyncOpen *a = static_cast<AsyncOpen *>(arg);
  AbandonOpen(a);
  if (!a->queued) delete a;
}

// Whether JS may still run in env: a completion dispatched while a worker's env is
// being torn down must not throw or settle anything (napi_throw there is fatal).
bool CanRunJs(napi_env env) {
  napi_value o, u;
  return napi_create_object(env, &o) == napi_ok && napi_get_undefined(env, &u) == napi_ok &&
         napi_set_named_property(env, o, "probe", u) == napi_ok;
}

void AsyncOpenDone(napi_env env, napi_value, void *, void *data) {
  AsyncOpen *a = static_cast<AsyncOpen *>(data);
  if (a->abandoned) {
    delete a;
    return;
  }
  napi_remove_env_cleanup_hook(a->env, AsyncOpenCleanup, a);
  if (!env || !CanRunJs(env)) {
    AbandonOpen(a);
    delete a;
    return;
  }
  pthread_join(a->th, nullptr);
  Napi::Env e(env);
  Napi::Value r = FinishKernelPort(e, a->h, &a->job);
  if (e.IsExceptionPending()) napi_reject_deferred(env, a->deferred, e.GetAndClearPendingException().Value());
  else napi_resolve_deferred(env, a->deferred, r);
  DpUnref(a->h);
  if (!a->h->refs) delete a->h;
  delete a;
}

void *AsyncOpenMain(void *arg) {
  AsyncOpen *a = static_cast<AsyncOpen *>(arg);
  a->job.Run();
  // Before the call: once queued, a belongs to the JS thread.
  napi_threadsafe_function t = a->tsfn;
  a->queued = true;
  if (napi_call_threadsafe_function(t, a, napi_tsfn_blocking) != napi_ok) a->queued = false;
  napi_release_threadsafe_function(t, napi_tsfn_release);
  return nullptr;
}

// (dp, backend, opts, name) as dpPortOpen and dpPortOpenAsync take them; false with an
// exception pending.
bool PortArgs(const Napi::CallbackInfo &info, DpH **h, std::string *backend, std::string *name) {
  Napi::Env env = info.Env();
  if (!ToDp(env, info[0], h)) return false;
  if (!info[1].IsString()) return ThrowType(env, "backend must be a string"), false;
  *backend = info[1].As<Napi::String>().Utf8Value();
  if (!info[2].IsObject()) return ThrowType(env, "opts must be an object"), false;
  *name = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : *backend;
  return true;
}

Napi::Value DpPortOpenAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  std::string backend, name;
  if (!PortArgs(info, &h, &backend, &name)) return Napi::Value();
  if (backend != "afpacket" && backend != "afxdp") return ThrowRange(env, "dpPortOpenAsync opens afpacket and afxdp ports; use dpPortOpen for " + backend);
  auto *a = new AsyncOpen();
  if (!ParseKernelPort(env, backend, name, info[2], &a->job)) {
    delete a;
    return Napi::Value();
  }
  napi_value promise, resname;
  napi_status st = napi_create_promise(env, &a->deferred, &promise);
  if (st == napi_ok) st = napi_create_string_utf8(env, "vfplane port open", NAPI_AUTO_LENGTH, &resname);
  if (st == napi_ok) st = napi_create_threadsafe_function(env, nullptr, nullptr, resname, 0, 1, nullptr, nullptr, nullptr, AsyncOpenDone, &a->tsfn);
  if (st != napi_ok) {
    delete a;  // a promise made and never settled is the GC's
    if (!Pending(env)) Napi::Error::New(env, "dpPortOpenAsync: napi setup failed").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  a->env = env;
  a->h = h;
  h->refs++;
  int rc = pthread_create(&a->th, nullptr, AsyncOpenMain, a);
  if (rc) {
    napi_release_threadsafe_function(a->tsfn, napi_tsfn_release);
    DpUnref(h);  // the caller's handle still holds it
    delete a;
    return ThrowErrno(env, "pthread_create for the port's open", -rc);
  }
  napi_add_env_cleanup_hook(env, AsyncOpenCleanup, a);
  return Napi::Value(env, promise);
}

// dpPortOpen(dp, backend, opts, name) → {slot, ...backend facts}
Napi::Value DpPortOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  std::string backend, name;
  if (!PortArgs(info, &h, &backend, &name)) return Napi::Value();
  Napi::Value o = info[2];
  Napi::Object extra = Napi::Object::New(env);
  extra.Set("backend", Napi::String::New(env, backend));
  char err[512] = "";
  vfp_port *p = nullptr;
  int rc = -ENOTSUP;
  if (backend == "memory-gen") {
    Napi::Value fv;
    if (!GetProp(env, o, "frames", &fv)) return Napi::Value();
    if (!fv.IsArray() || fv.As<Napi::Array>().Length() == 0)
      return ThrowType(env, "opts.frames must be a non-empty array of Uint8Array");
    Napi::Array fa = fv.As<Napi::Array>();
    std::vector<vfp_mem_frame> frames(fa.Length());
    for (uint32_t i = 0; i < fa.Length(); i++) {
      Napi::Value e;
      Span<uint8_t> b;
      if (!fa.Get(i).UnwrapTo(&e) || !ToBytes(env, e, "opts.frames[" + std::to_string(i) + "]", &b)) return Napi::Value();
      frames[i] = {b.data, static_cast<uint32_t>(b.len)};
    }
    uint32_t ring = 4096, headroom = 256;
    if (!OptUint(env, o, "ring", 1, 1 << 20, &ring) || !OptUint(env, o, "headroom", 0, 4096, &headroom)) return Napi::Value();
    rc = vfp_mem_port__create_gen(&p, frames.data(), static_cast<uint32_t>(frames.size()), ring, headroom, &kAlloc);
  } else if (backend == "memory-sink") {
    uint32_t queues = 1;
    if (!OptUint(env, o, "queues", 1, VFP_MEM_SINK_MAX_QUEUES, &queues)) return Napi::Value();
    rc = vfp_mem_port__create_sink_q(&p, static_cast<uint16_t>(queues), &kAlloc);
  } else if (backend == "afpacket" || backend == "afxdp") {
    KernelPortJob j;
    if (!ParseKernelPort(env, backend, name, o, &j)) return Napi::Value();
    j.Run();
    return FinishKernelPort(env, h, &j);
  } else if (backend == "dpdk") {
#ifdef DP_DPDK
    std::string dev;
    bool hd = false;
    if (!OptString(env, o, "dev", &dev, &hd)) return Napi::Value();
    if (!hd) return ThrowType(env, "opts.dev (a PCI address or vdev devargs) is required for the dpdk backend");
    vfp_dpdk_opts dopt;
    vfp_dpdk_opts__defaults(&dopt);
    dopt.dev = dev.c_str();
    double txo = 0;
    Napi::Value tv;
    if (!OptUint(env, o, "queues", 1, 64, &dopt.n_queues) || !OptUint(env, o, "mbufs", 0, 1 << 24, &dopt.n_mbufs) ||
        !OptUint(env, o, "mbufCache", 0, 512, &dopt.mbuf_cache) ||
        !OptUint(env, o, "mbufDataSize", 0, 65535, &dopt.mbuf_data_size) ||
        !OptUint(env, o, "rxDesc", 0, 32768, &dopt.rx_desc) || !OptUint(env, o, "txDesc", 0, 32768, &dopt.tx_desc) ||
        !Opt(env, o, "txOffloads", &tv))
      return Napi::Value();
    if (Has(tv)) {
      if (!ToInt(env, tv, "opts.txOffloads", 0, 9007199254740991.0, &txo)) return Napi::Value();
      dopt.want_tx_offloads = static_cast<uint64_t>(txo);
    }
    Napi::Value fq;
    if (!Opt(env, o, "fewerQueuesOk", &fq)) return Napi::Value();
    if (Has(fq)) {
      bool b = false;
      if (!ToBool(env, fq, "opts.fewerQueuesOk", &b)) return Napi::Value();
      dopt.fewer_queues_ok = b ? 1 : 0;
    }
    rc = vfp_dpdk_port__create(&p, &dopt, err, sizeof err);
    if (!rc) {
      vfp_dpdk_info di;
      vfp_dpdk_port__info(p, &di);
      extra.Set("portId", Napi::Number::New(env, di.port_id));
      extra.Set("driver", Napi::String::New(env, di.driver));
      extra.Set("txOffloads", Napi::Number::New(env, static_cast<double>(di.tx_offloads)));
      extra.Set("mbufs", Napi::Number::New(env, di.n_mbufs));
      extra.Set("rxDesc", Napi::Number::New(env, di.rx_desc));
      extra.Set("txDesc", Napi::Number::New(env, di.tx_desc));
      extra.Set("maxFrame", Napi::Number::New(env, di.max_frame));
      extra.Set("mtu", Napi::Number::New(env, di.mtu));
      Napi::Uint8Array mac = Napi::Uint8Array::New(env, 6);
      memcpy(mac.Data(), di.mac, 6);
      extra.Set("mac", mac);
    }
#endif
  } else {
    return ThrowRange(env, "backend " + backend + " is not one of afpacket, afxdp, dpdk, memory-gen, memory-sink");
  }
  if (rc == -ENOTSUP && !err[0]) {
    snprintf(err, sizeof err, "the %s backend is not built into this addon; `vfplane doctor` says why and how to "
             "build it", backend.c_str());
  }
  if (rc) return ThrowMsg(env, err, "dpPortOpen " + backend, rc);
  uint16_t slot;
  if (AddPort(env, h, p, name, &slot)) return Napi::Value();
  extra.Set("queues", Napi::Number::New(env, p->n_queues));
  return PortResult(env, slot, extra);
}

Napi::Value DpPortRemove(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  uint16_t slot;
  if (!ToDp(env, info[0], &h) || !ToUint(env, info[1], "slot", 0, VFP_DP_MAX_PORTS - 1, &slot)) return Napi::Value();
  int rc = vfp_dp__port_remove(h->dp, slot);
  if (rc) return ThrowErrno(env, "dpPortRemove: port slot " + std::to_string(slot), rc);
  return env.Undefined();
}

// The backend's own counters of a port (ring overruns and the like), racy by design.
Napi::Value DpPortCounters(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  uint16_t slot;
  if (!ToDp(env, info[0], &h) || !ToUint(env, info[1], "slot", 0, VFP_DP_MAX_PORTS - 1, &slot)) return Napi::Value();
  vfp_port *p = vfp_dp__port(h->dp, slot);
  if (!p) return env.Null();
  Napi::Object r = Napi::Object::New(env);
  r.Set("rxPkts", Napi::Number::New(env, static_cast<double>(p->rx_pkts)));
  r.Set("txPkts", Napi::Number::New(env, static_cast<double>(p->tx_pkts)));
  r.Set("txFull", Napi::Number::New(env, static_cast<double>(p->tx_full)));
  r.Set("rxNombuf", Napi::Number::New(env, static_cast<double>(p->rx_nombuf)));
  r.Set("kind", Napi::String::New(env, p->ops->name));
  r.Set("queues", Napi::Number::New(env, p->n_queues));
  // Frames the backend itself dropped, by its own reason (snake_case, as in Prometheus).
  Napi::Object drops = Napi::Object::New(env);
  auto put = [&](const char *k, uint64_t v) { drops.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  (void)put;
#ifdef DP_AFPACKET
  if (!strcmp(p->ops->name, "afpacket")) {
    vfp_afpacket_stats st;
    vfp_afpacket_port__stats(p, &st);
    put("rx_truncated", st.rx_truncated);
    put("rx_kernel_drops", st.rx_kernel_drops);
    put("tx_oversize", st.tx_oversize);
    put("tx_kick_errors", st.tx_kick_errors);
    put("tx_link_down", st.tx_link_down);
    put("tx_device_drops", st.tx_device_drops);
    r.Set("ringBytes", Napi::Number::New(env, static_cast<double>(st.ring_bytes)));
    r.Set("csumFinished", Napi::Number::New(env, static_cast<double>(st.rx_csum_finished)));
    r.Set("csumLeft", Napi::Number::New(env, static_cast<double>(st.rx_csum_left)));
    // Whether the host stack's copy of received frames is dropped (opts.stackDrop), and
    // if it was asked for and is not, why.
    r.Set("stackDrop", Napi::Boolean::New(env, st.stack_drop != 0));
    if (st.stack_drop_note && st.stack_drop_note[0]) r.Set("stackDropNote", Napi::String::New(env, st.stack_drop_note));
  }
#endif
#ifdef DP_AFXDP
  if (!strcmp(p->ops->name, "afxdp")) {
    vfp_afxdp_info xi;
    vfp_afxdp_port__info(p, &xi);
    put("tx_oversize", xi.tx_oversize);
    put("tx_link_down", xi.tx_link_down);
    put("tx_device_drops", xi.tx_device_drops);
    put("rx_ring_full", xi.rx_ring_full);
    put("rx_fill_empty", xi.rx_fill_empty);
    put("rx_oversize", xi.rx_oversize);
    r.Set("ringBytes", Napi::Number::New(env, static_cast<double>(xi.umem_bytes)));
  }
#endif
#ifdef DP_DPDK
  if (vfp_dpdk_port__is(p)) {
    vfp_dpdk_info di;
    vfp_dpdk_port__info(p, &di);
    put("rx_multiseg", di.rx_multiseg);
    put("tx_too_big", di.tx_too_big);
    put("tx_nombuf", di.tx_nombuf);
    put("rx_no_mbuf", di.rx_nombuf);
    put("rx_missed", di.rx_missed);
    put("rx_errors", di.rx_errors);
    put("tx_errors", di.tx_errors);
    r.Set("ringBytes", Napi::Number::New(env, static_cast<double>(di.pool_bytes)));
  }
#endif
  if (!strcmp(p->ops->name, "memory-sink"))
    r.Set("foreignCalls", Napi::Number::New(env, static_cast<double>(vfp_mem_port__foreign_calls(p))));
  r.Set("drops", drops);
  return r;
}

// ---- configuration

bool ToArray(Napi::Env env, Napi::Value obj, const char *key, Napi::Array *out) {
  Napi::Value v;
  if (!Opt(env, obj, key, &v)) return false;
  if (!Has(v)) {
    *out = Napi::Array::New(env, 0);
    return true;
  }
  if (!v.IsArray()) {
    ThrowType(env, std::string("spec.") + key + " must be an array");
    return false;
  }
  *out = v.As<Napi::Array>();
  return true;
}

// Bytes of a packed static FDB entry (dp.ts FDB_RECORD_BYTES): VNI (u32 little-endian),
// MAC, address family (4 or 6), a zero byte, the VTEP (16 bytes, IPv4 in the first 4).
constexpr size_t kFdbRecord = 28;

// dpCommit(dp, spec, timeoutMs) → epoch
Napi::Value DpCommit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  if (!ToDp(env, info[0], &h)) return Napi::Value();
  Napi::Value sv = info[1];
  if (!sv.IsObject()) return ThrowType(env, "spec must be an object");
  uint32_t timeout = 2000;
  if (info.Length() > 2 && !ToUint(env, info[2], "timeoutMs", 1, 600000, &timeout)) return Napi::Value();
  vfp_dp_spec s;
  memset(&s, 0, sizeof s);
  Napi::Value v;
  double d;
  if (!GetProp(env, sv, "uplink", &v) || !ToInt(env, v, "spec.uplink", -1, VFP_DP_MAX_PORTS - 1, &d)) return Napi::Value();
  s.uplink = d < 0 ? VFP_DP_NO_PORT : static_cast<uint16_t>(d);
  const uint8_t *mac;
  if (!GetProp(env, sv, "uplinkMac", &v) || !ToMac(env, v, "spec.uplinkMac", &mac)) return Napi::Value();
  memcpy(s.uplink_mac, mac, 6);
  if (!GetProp(env, sv, "tunnel", &v) || !ToTunnelCfg(env, v, &s.tunnel)) return Napi::Value();
  bool b;
  if (!GetProp(env, sv, "learn", &v) || !ToBool(env, v, "spec.learn", &b)) return Napi::Value();
  s.learn = b;
  if (!GetProp(env, sv, "antiSpoof", &v) || !ToBool(env, v, "spec.antiSpoof", &b)) return Napi::Value();
  s.anti_spoof = b;
  if (!GetProp(env, sv, "icmpTooBig", &v) || !ToBool(env, v, "spec.icmpTooBig", &b)) return Napi::Value();
  s.icmp_too_big = b;
  if (!GetProp(env, sv, "verifyUdpCsum", &v) || !ToBool(env, v, "spec.verifyUdpCsum", &b)) return Napi::Value();
  s.verify_udp_csum = b;
  if (!OptUint(env, sv, "ageSeconds", 1, 1e7, &s.age_seconds)) return Napi::Value();

  Napi::Array arr;
  std::vector<vfp_dp_peer_spec> peers;
  if (!ToArray(env, sv, "peers", &arr)) return Napi::Value();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e, f;
    std::string n = "spec.peers[" + std::to_string(i) + "]";
    vfp_dp_peer_spec p;
    memset(&p, 0, sizeof p);
    if (!arr.Get(i).UnwrapTo(&e) || !GetProp(env, e, "vtep", &f) || !ToAddr(env, f, n + ".vtep", &p.vtep)) return Napi::Value();
    if (!GetProp(env, e, "mac", &f)) return Napi::Value();
    if (Has(f)) {
      if (!ToMac(env, f, n + ".mac", &mac)) return Napi::Value();
      memcpy(p.mac, mac, 6);
      p.mac_known = 1;
    }
    if (!GetProp(env, e, "via", &f)) return Napi::Value();
    if (Has(f) && !ToAddr(env, f, n + ".via", &p.via)) return Napi::Value();
    peers.push_back(p);
  }
  std::vector<vfp_dp_att_spec> atts;
  if (!ToArray(env, sv, "atts", &arr)) return Napi::Value();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e, f;
    std::string n = "spec.atts[" + std::to_string(i) + "]";
    vfp_dp_att_spec a;
    memset(&a, 0, sizeof a);
    if (!arr.Get(i).UnwrapTo(&e) || !GetProp(env, e, "port", &f) || !ToUint(env, f, n + ".port", 0, VFP_DP_MAX_PORTS - 1, &a.port) ||
        !GetProp(env, e, "vni", &f) || !ToUint(env, f, n + ".vni", 0, 0xffffff, &a.vni) ||
        !GetProp(env, e, "mac", &f) || !ToMac(env, f, n + ".mac", &mac))
      return Napi::Value();
    memcpy(a.mac, mac, 6);
    atts.push_back(a);
  }
  // The static entries, packed (dp.ts packFdbEntry; DataPlane.commit packs a list): kFdbRecord
  // bytes an entry, so that a node's 100k entries cross in one copy instead of 300k
  // property reads (helper-78).
  std::vector<vfp_dp_fdb_spec> fdb;
  Span<uint8_t> packed;
  if (!GetProp(env, sv, "fdb", &v) || !ToBytes(env, v, "spec.fdb", &packed)) return Napi::Value();
  if (packed.len % kFdbRecord) return ThrowRange(env, "spec.fdb must hold whole " + std::to_string(kFdbRecord) + "-byte records (got " + std::to_string(packed.len) + " bytes)");
  fdb.resize(packed.len / kFdbRecord);
  for (size_t i = 0; i < fdb.size(); i++) {
    const uint8_t *r = packed.data + i * kFdbRecord;
    vfp_dp_fdb_spec &a = fdb[i];
    memset(&a, 0, sizeof a);
    a.vni = static_cast<uint32_t>(r[0]) | static_cast<uint32_t>(r[1]) << 8 | static_cast<uint32_t>(r[2]) << 16 | static_cast<uint32_t>(r[3]) << 24;
    memcpy(a.mac, r + 4, 6);
    a.vtep.family = r[10];
    memcpy(a.vtep.bytes, r + 12, 16);
    if (a.vni > 0xffffff || (r[10] != 4 && r[10] != 6) || (r[10] == 4 && std::any_of(r + 16, r + 28, [](uint8_t x) { return x != 0; })))
      return ThrowRange(env, "spec.fdb record " + std::to_string(i) + ": VNI over 16777215, or an address family other than 4 or 6 (with IPv4, the last 12 address bytes 0)");
  }
  std::vector<vfp_dp_flood_spec> floods;
  std::vector<std::vector<vfp_addr>> flood_addrs;
  if (!ToArray(env, sv, "floods", &arr)) return Napi::Value();
  flood_addrs.resize(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e, f;
    std::string n = "spec.floods[" + std::to_string(i) + "]";
    vfp_dp_flood_spec fl;
    memset(&fl, 0, sizeof fl);
    if (!arr.Get(i).UnwrapTo(&e) || !GetProp(env, e, "vni", &f) || !ToUint(env, f, n + ".vni", 0, 0xffffff, &fl.vni) ||
        !GetProp(env, e, "vteps", &f))
      return Napi::Value();
    if (!f.IsArray()) return ThrowType(env, n + ".vteps must be an array");
    Napi::Array va = f.As<Napi::Array>();
    for (uint32_t k = 0; k < va.Length(); k++) {
      Napi::Value x;
      vfp_addr a;
      if (!va.Get(k).UnwrapTo(&x) || !ToAddr(env, x, n + ".vteps[" + std::to_string(k) + "]", &a)) return Napi::Value();
      flood_addrs[i].push_back(a);
    }
    floods.push_back(fl);
  }
  for (size_t i = 0; i < floods.size(); i++) {
    floods[i].vteps = flood_addrs[i].data();
    floods[i].n = static_cast<uint32_t>(flood_addrs[i].size());
  }
  std::vector<uint32_t> extra;
  if (!ToArray(env, sv, "extraVnis", &arr)) return Napi::Value();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e;
    uint32_t x;
    if (!arr.Get(i).UnwrapTo(&e) || !ToUint(env, e, "spec.extraVnis[" + std::to_string(i) + "]", 0, 0xffffff, &x)) return Napi::Value();
    extra.push_back(x);
  }
  s.peers = peers.data();
  s.n_peers = static_cast<uint32_t>(peers.size());
  s.atts = atts.data();
  s.n_atts = static_cast<uint32_t>(atts.size());
  s.fdb = fdb.data();
  s.n_fdb = static_cast<uint32_t>(fdb.size());
  s.floods = floods.data();
  s.n_floods = static_cast<uint32_t>(floods.size());
  s.extra_vnis = extra.data();
  s.n_extra_vnis = static_cast<uint32_t>(extra.size());
  char err[512] = "";
  int64_t rc = vfp_dp__commit(h->dp, &s, timeout, err, sizeof err);
  if (rc < 0) return ThrowMsg(env, err, "dpCommit", static_cast<int>(rc));
  Napi::Object r = Napi::Object::New(env);
  r.Set("epoch", Napi::Number::New(env, static_cast<double>(rc)));
  r.Set("staticFdbBuilds", Napi::Number::New(env, static_cast<double>(vfp_dp__static_fdb_builds(h->dp))));
  if (err[0]) r.Set("warning", Napi::String::New(env, err));
  return r;
}

// ---- counters

// dpStats(dp) → {buffer: ArrayBuffer over every worker's counters, workers}
Napi::Value DpStats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  if (!ToDp(env, info[0], &h)) return Napi::Value();
  if (!h->view.IsEmpty()) return h->view.Value();
  uint16_t n;
  vfp_dp_worker_stats *st = vfp_dp__stats(h->dp, &n);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, st, sizeof(vfp_dp_worker_stats) * n, DpViewFinalize, h, &ab) != napi_ok)
    return ThrowType(env, "dpStats: cannot create an external ArrayBuffer");
  h->refs++;  // the ArrayBuffer's finalizer gives it back
  Napi::Object r = Napi::Object::New(env);
  r.Set("buffer", Napi::Value(env, ab));
  r.Set("workers", Napi::Number::New(env, n));
  h->view = Napi::Persistent(Napi::Value(r));
  return r;
}

Napi::Value Names(Napi::Env env, std::initializer_list<const char *> names) {
  Napi::Array a = Napi::Array::New(env, names.size());
  uint32_t i = 0;
  for (const char *n : names) a.Set(i++, Napi::String::New(env, n));
  return a;
}

// Where each counter sits, in 64-bit words, so TypeScript can read them in place.
Napi::Value DpStatsLayout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  auto W = [&](size_t bytes) { return Napi::Number::New(env, static_cast<double>(bytes / 8)); };
  r.Set("workerWords", W(sizeof(vfp_dp_worker_stats)));
  r.Set("engine", W(offsetof(vfp_dp_worker_stats, engine)));
  r.Set("engineDrops", W(offsetof(vfp_dp_worker_stats, engine) + offsetof(vfp_stats, drops)));
  r.Set("drops", W(offsetof(vfp_dp_worker_stats, drops)));
  Napi::Array dn = Napi::Array::New(env, VFP_DP_D__COUNT);
  for (unsigned i = 0; i < VFP_DP_D__COUNT; i++) dn.Set(i, Napi::String::New(env, vfp_dp_drop__name(i)));
  r.Set("dropNames", dn);
  Napi::Object misc = Napi::Object::New(env);
#define F(k, f) misc.Set(k, W(offsetof(vfp_dp_worker_stats, f)))
  F("loops", loops); F("busyLoops", busy_loops); F("idleSleeps", idle_sleeps); F("epoch", epoch);
  F("arpReplies", arp_replies); F("arpRequests", arp_requests); F("neighLearned", neigh_learned);
  F("aged", aged); F("cpu", cpu); F("ndSolicits", nd_solicits); F("ndAdverts", nd_adverts); F("mldReports", mld_reports); F("mldQueries", mld_queries); F("vtepConflicts", vtep_conflicts); F("vtepConflictMac", vtep_conflict_mac); F("vtepConflictNs", vtep_conflict_ns);
  F("learnShared", learn_shared); F("learnShareLost", learn_share_lost); F("learnSynced", learn_synced);
  F("handedOff", handed_off); F("learnNotPeer", learn_not_peer); F("learnedEntries", learned_entries);
  F("destCacheHits", dest_cache_hits); F("destCacheMisses", dest_cache_misses); F("destCacheBypassed", dest_cache_bypassed);
  F("srcCacheHits", src_cache_hits); F("srcCacheMisses", src_cache_misses); F("srcCacheBypassed", src_cache_bypassed);
  F("icmpTooBig", icmp_too_big); F("icmpTooBigLimited", icmp_too_big_limited); F("echoReplies", echo_replies); F("pmtuLearned", pmtu_learned);
  F("reasmFragments", reasm_fragments); F("reasmDatagrams", reasm_datagrams); F("neighProbes", neigh_probes); F("announcements", announcements);
  F("notPeerFamily", not_peer_family); F("notPeerAddr", not_peer_addr); F("notPeerNs", not_peer_ns);
  F("dupLocalMacs", dup_local_macs); F("dupLocalMac", dup_local_mac); F("dupLocalVni", dup_local_vni); F("dupLocalFamily", dup_local_family); F("dupLocalAddr", dup_local_addr); F("dupLocalNs", dup_local_ns);
#undef F
  r.Set("fields", misc);
  r.Set("ports", W(offsetof(vfp_dp_worker_stats, ports)));
  r.Set("portWords", W(sizeof(vfp_dp_port_stats)));
  r.Set("portFields", Names(env, {"rxPkts", "rxBytes", "txPkts", "txBytes", "drops", "errors"}));
  r.Set("vnis", W(offsetof(vfp_dp_worker_stats, vnis)));
  r.Set("vniWords", W(sizeof(vfp_dp_vni_stats)));
  r.Set("vniFields", Names(env, {"vni", "encapPkts", "encapBytes", "decapPkts", "decapBytes", "floodPkts", "localPkts", "drops"}));
  r.Set("peers", W(offsetof(vfp_dp_worker_stats, peers)));
  r.Set("peerWords", W(sizeof(vfp_dp_peer_stats)));
  r.Set("peerFields", Names(env, {"family", "addrHi", "addrLo", "encapPkts", "encapBytes", "requests", "mac", "resolvedNs", "pmtu", "pmtuUntilNs", "confirmedNs", "decapPkts", "decapBytes", "rxNs", "floodPkts", "wrongPortPkts", "wrongPort", "wrongPortNs", "portUnreach", "portUnreachNs", "notLocalPkts", "notLocalFamily", "notLocalHi", "notLocalLo", "notLocalNs"}));
  r.Set("maxPeers", Napi::Number::New(env, VFP_DP_MAX_PEERS));
  r.Set("maxPorts", Napi::Number::New(env, VFP_DP_MAX_PORTS));
  r.Set("maxVnis", Napi::Number::New(env, VFP_DP_MAX_VNIS));
  return r;
}

Napi::Value LearnedArray(Napi::Env env, const vfp_fdb_entry_info *out, int n);

// dpLearned(dp, cap, timeoutMs) → [{vni, mac, vtep, stamp}]
Napi::Value DpLearned(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  uint32_t cap, timeout = 1000;
  if (!ToDp(env, info[0], &h) || !ToUint(env, info[1], "cap", 1, 1 << 24, &cap)) return Napi::Value();
  if (info.Length() > 2 && !ToUint(env, info[2], "timeoutMs", 1, 60000, &timeout)) return Napi::Value();
  std::vector<vfp_fdb_entry_info> out(cap);
  int n = vfp_dp__learned(h->dp, out.data(), cap, timeout);
  if (n < 0) return ThrowErrno(env, "dpLearned: a worker did not answer", n);
  return LearnedArray(env, out.data(), n);
}

// dpLearnedGet(dp, vni, mac, timeoutMs) → [{vni, mac, vtep, stamp}]: the entry for the key
// in each worker's learned FDB that has it (a lookup, not a walk).
Napi::Value DpLearnedGet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  uint32_t vni, timeout = 1000;
  if (!ToDp(env, info[0], &h) || !ToUint(env, info[1], "vni", 0, 0xffffff, &vni)) return Napi::Value();
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[2].As<Napi::Uint8Array>().ElementLength() != 6)
    return ThrowType(env, "mac must be a 6-byte Uint8Array");
  if (info.Length() > 3 && !ToUint(env, info[3], "timeoutMs", 1, 60000, &timeout)) return Napi::Value();
  std::vector<vfp_fdb_entry_info> out(VFP_DP_MAX_WORKERS);
  int n = vfp_dp__learned_get(h->dp, vni, info[2].As<Napi::Uint8Array>().Data(), out.data(), timeout);
  if (n < 0) return ThrowErrno(env, "dpLearnedGet: a worker did not answer", n);
  return LearnedArray(env, out.data(), n);
}

Napi::Value LearnedArray(Napi::Env env, const vfp_fdb_entry_info *out, int n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (int i = 0; i < n; i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("vni", Napi::Number::New(env, out[i].vni));
    Napi::Uint8Array mac = Napi::Uint8Array::New(env, 6);
    memcpy(mac.Data(), out[i].mac, 6);
    e.Set("mac", mac);
    e.Set("vtep", AddrValue(env, out[i].vtep));
    e.Set("stamp", Napi::Number::New(env, out[i].stamp));
    a.Set(i, e);
  }
  return a;
}

// dpDropsArm(dp, perWorker, reasons?: string[]): each worker records its next perWorker
// drops (0: off) of those reasons (counter names; absent or empty: every reason).
Napi::Value DpDropsArm(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  uint32_t n;
  if (!ToDp(env, info[0], &h) || !ToUint(env, info[1], "perWorker", 0, VFP_DP_DROP_RING - 1, &n)) return Napi::Value();
  uint64_t mask = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsArray()) return ThrowType(env, "reasons must be an array of drop reason names");
    Napi::Array a = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e;
      if (!a.Get(i).UnwrapTo(&e) || !e.IsString()) return ThrowType(env, "reasons[" + std::to_string(i) + "] must be a string");
      const std::string name = e.As<Napi::String>().Utf8Value();
      uint64_t bit = 0;
      for (unsigned r = 0; r < VFP_DP_D__COUNT && !bit; r++)
        if (name == vfp_dp_drop__name(r)) bit = vfp_dp_drop__bit(r);
      for (unsigned r = 1; r < VFP_R__COUNT && !bit; r++)
        if (name == vfp_reason__name(r)) bit = vfp_dp_drop__bit(VFP_DP_DROP_ENGINE | r);
      if (!bit) return ThrowRange(env, "reasons[" + std::to_string(i) + "]: " + name + " is not a drop reason");
      mask |= bit;
    }
  }
  int rc = vfp_dp__drops_arm(h->dp, n, mask);
  if (rc) return ThrowErrno(env, "dpDropsArm", rc);
  return env.Undefined();
}

// dpDropsRead(dp) → [{unixMs, worker, port, dir, reason, len, decap, head}]: what the
// workers recorded since the last arming (port: a slot, or null; dir: "rx" or "tx";
// decap: {vni, vtep} when head is the inner frame of a decapsulated one, else null).
Napi::Value DpDropsRead(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DpH *h;
  if (!ToDp(env, info[0], &h)) return Napi::Value();
  std::vector<vfp_dp_drop_rec> out((size_t)VFP_DP_DROP_RING * VFP_DP_MAX_WORKERS);
  int n = vfp_dp__drops_read(h->dp, out.data(), (uint32_t)out.size());
  if (n < 0) return ThrowErrno(env, "dpDropsRead", n);
  Napi::Array a = Napi::Array::New(env, n);
  for (int i = 0; i < n; i++) {
    const vfp_dp_drop_rec &d = out[i];
    Napi::Object e = Napi::Object::New(env);
    e.Set("unixMs", Napi::Number::New(env, (double)d.unix_ns / 1e6));
    e.Set("worker", Napi::Number::New(env, d.worker));
    e.Set("port", d.port == VFP_DP_NO_PORT ? env.Null() : Napi::Number::New(env, d.port));
    e.Set("dir", Napi::String::New(env, d.dir ? "tx" : "rx"));
    const char *name = vfp_dp_drop__reason_name(d.reason);
    e.Set("reason", Napi::String::New(env, name ? name : "unknown"));
    e.Set("len", Napi::Number::New(env, d.len));
    if (d.decap) {
      Napi::Object dc = Napi::Object::New(env);
      dc.Set("vni", Napi::Number::New(env, d.vni));
      vfp_addr a;
      memset(&a, 0, sizeof a);
      a.family = d.vtep_family;
      memcpy(a.bytes, d.vtep, 16);
      dc.Set("vtep", AddrValue(env, a));
      e.Set("decap", dc);
    } else {
      e.Set("decap", env.Null());
    }
    Napi::Uint8Array head = Napi::Uint8Array::New(env, d.head_len);
    memcpy(head.Data(), d.head, d.head_len);
    e.Set("head", head);
    a.Set(i, e);
  }
  return a;
}

#ifdef DP_AFXDP
// afxdpClearStale(ifname, netns | null) -> { rc, message }: see vfp_afxdp__clear_stale.
Napi::Value AfxdpClearStale(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "ifname must be a string");
  if (!info[1].IsString() && !info[1].IsNull() && !info[1].IsUndefined()) return ThrowType(env, "netns must be a string or null");
  std::string ifname = info[0].As<Napi::String>().Utf8Value();
  std::string netns = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  char msg[1024] = "";
  int rc = vfp_afxdp__clear_stale(ifname.c_str(), netns.c_str(), msg, sizeof msg);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rc", Napi::Number::New(env, rc));
  o.Set("message", Napi::String::New(env, msg));
  return o;
}
#endif

#ifdef DP_DPDK
// dpdkInit(args: string[]) — the EAL, once per process.
Napi::Value DpdkInit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) return ThrowType(env, "args must be an array of strings");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::string> keep;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e;
    if (!a.Get(i).UnwrapTo(&e) || !e.IsString()) return ThrowType(env, "args[" + std::to_string(i) + "] must be a string");
    keep.push_back(e.As<Napi::String>().Utf8Value());
  }
  std::vector<const char *> argv;
  for (auto &s : keep) argv.push_back(s.c_str());
  char err[512] = "";
  int rc = vfp_dpdk__init(static_cast<int>(argv.size()), argv.data(), err, sizeof err);
  if (rc) return ThrowMsg(env, err, "dpdkInit", rc);
  return env.Undefined();
}
#endif

}  // namespace

void RegisterDataplane(Napi::Env env, Napi::Object exports) {
  static const ExportFn fns[] = {
      {"dpCreate", DpCreate},       {"dpStop", DpStop},           {"dpPortOpen", DpPortOpen}, {"dpPortOpenAsync", DpPortOpenAsync},
      {"dpPortRemove", DpPortRemove}, {"dpPortCounters", DpPortCounters}, {"dpCommit", DpCommit},
      {"dpStats", DpStats},         {"dpStatsLayout", DpStatsLayout}, {"dpLearned", DpLearned}, {"dpLearnedGet", DpLearnedGet},
      {"dpDropsArm", DpDropsArm},   {"dpDropsRead", DpDropsRead},
#ifdef DP_DPDK
      {"dpdkInit", DpdkInit},
#endif
#ifdef DP_AFXDP
      {"afxdpClearStale", AfxdpClearStale},
#endif
  };
  if (!ExportAll(env, exports, fns, sizeof fns / sizeof fns[0])) return;
#ifdef DP_DPDK
  // enum vfp_dpdk_offload, for src/dataplane/uplink-profile.ts to be checked against.
  Napi::Object bits = Napi::Object::New(env);
  static const struct { const char *name; uint32_t bit; } kBits[] = {
      {"ipv4Cksum", VFP_DPDK_TX_IPV4_CKSUM},           {"udpCksum", VFP_DPDK_TX_UDP_CKSUM},
      {"outerIpv4Cksum", VFP_DPDK_TX_OUTER_IPV4_CKSUM}, {"outerUdpCksum", VFP_DPDK_TX_OUTER_UDP_CKSUM},
      {"vxlanTnlTso", VFP_DPDK_TX_VXLAN_TNL_TSO},      {"mbufFastFree", VFP_DPDK_TX_MBUF_FAST_FREE},
  };
  for (const auto &b : kBits)
    if (!bits.Set(b.name, Napi::Number::New(env, b.bit)).UnwrapOr(false)) return;
  exports.Set("dpdkTxOffloadBits", bits);
#endif
}

}  // namespace vfpglue
