// node-addon-api glue: a flat function table over the C engine. It converts and checks
// arguments (TypeError/RangeError naming the argument), owns lifetimes (handles, the
// FDB, zero-copy stats views) and supplies the core's allocator. No packet logic here.
#define NODE_ADDON_API_ENABLE_MAYBE
#include <napi.h>

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "core/fdb.h"
#include "core/flowhash.h"
#include "core/vfp.h"
#include "core/vxlan.h"
#include "io/memory.h"
#include "worker/bench.h"
#include "net/netops.h"

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <vector>

#include "addon/glue.h"

// Shared with the other glue files through addon/glue.h.
namespace vfpglue {

// ---------------------------------------------------------------- allocator

constexpr size_t kHuge = 2u << 20;

// Zeroed, aligned memory for the core. Big tables (FDB buckets, generator slabs) get
// 2 MiB alignment and MADV_HUGEPAGE before they are first touched, so THP in `madvise`
// mode backs them with huge pages: a 1M-entry FDB then needs ~10 TLB entries, not 4500.
void *CoreAlloc(void *, size_t size, size_t align) {
  if (align < sizeof(void *)) align = sizeof(void *);
  size_t bytes = size ? size : 1;
  const bool huge = size >= kHuge;
  if (huge) {
    if (align < kHuge) align = kHuge;
    bytes = (size + kHuge - 1) & ~(kHuge - 1);
  }
  void *p = nullptr;
  if (posix_memalign(&p, align, bytes) != 0) return nullptr;
  if (huge) (void)madvise(p, bytes, MADV_HUGEPAGE);  // advice only: fine if refused
  memset(p, 0, bytes);
  return p;
}

void CoreFree(void *, void *p, size_t) { free(p); }

const vfp_alloc kAlloc = {CoreAlloc, CoreFree, nullptr};

// ---------------------------------------------------------------- errors and arguments

Napi::Value ThrowType(Napi::Env env, const std::string &msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return Napi::Value();
}
Napi::Value ThrowRange(Napi::Env env, const std::string &msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return Napi::Value();
}
// An Error carrying err.code = "ENOSPC" etc., for failures the core reports as -errno.
Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int neg) {
  const char *code = neg == -ENOSPC   ? "ENOSPC"
                     : neg == -ENOMEM ? "ENOMEM"
                     : neg == -EINVAL ? "EINVAL"
                     : neg == -ENOENT ? "ENOENT"
                     : neg == -ENOTSUP ? "ENOTSUP"
                                      : "EIO";
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(-neg));
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, neg));
  e.ThrowAsJavaScriptException();
  return Napi::Value();
}

bool Pending(Napi::Env env) { return env.IsExceptionPending(); }

bool GetProp(Napi::Env env, Napi::Value obj, const char *key, Napi::Value *out) {
  if (!obj.IsObject()) return false;
  return obj.As<Napi::Object>().Get(key).UnwrapTo(out);
}

// An integer in [min, max]; names the argument in the error.
bool ToInt(Napi::Env env, Napi::Value v, const std::string &name, double min, double max, double *out) {
  if (!v.IsNumber()) {
    ThrowType(env, name + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == static_cast<double>(static_cast<int64_t>(d)))) {
    ThrowType(env, name + " must be an integer (got " + std::to_string(d) + ")");
    return false;
  }
  if (d < min || d > max) {
    ThrowRange(env, name + " " + std::to_string(static_cast<int64_t>(d)) + " is outside " +
                        std::to_string(static_cast<int64_t>(min)) + "–" +
                        std::to_string(static_cast<int64_t>(max)));
    return false;
  }
  *out = d;
  return true;
}

bool ToBool(Napi::Env env, Napi::Value v, const std::string &name, bool *out) {
  if (!v.IsBoolean()) {
    ThrowType(env, name + " must be a boolean");
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

bool ToBytes(Napi::Env env, Napi::Value v, const std::string &name, Span<uint8_t> *out) {
  return ToTyped<uint8_t>(env, v, name, napi_uint8_array, "Uint8Array", out);
}

bool ToMac(Napi::Env env, Napi::Value v, const std::string &name, const uint8_t **mac) {
  Span<uint8_t> s;
  if (!ToBytes(env, v, name, &s)) return false;
  if (s.len != 6) {
    ThrowRange(env, name + " must hold 6 bytes (got " + std::to_string(s.len) + ")");
    return false;
  }
  *mac = s.data;
  return true;
}

// An IP address as 4 (IPv4) or 16 (IPv6) bytes: the family is the length.
bool ToAddr(Napi::Env env, Napi::Value v, const std::string &name, vfp_addr *a) {
  Span<uint8_t> s;
  if (!ToBytes(env, v, name, &s)) return false;
  if (s.len != 4 && s.len != 16) {
    ThrowRange(env, name + " must hold 4 (IPv4) or 16 (IPv6) bytes (got " + std::to_string(s.len) + ")");
    return false;
  }
  memset(a, 0, sizeof *a);
  a->family = s.len == 4 ? 4 : 6;
  memcpy(a->bytes, s.data, s.len);
  return true;
}

Napi::Value AddrValue(Napi::Env env, const vfp_addr &a) {
  size_t n = a.family == 4 ? 4 : 16;
  Napi::Uint8Array out = Napi::Uint8Array::New(env, n);
  if (Pending(env)) return Napi::Value();
  memcpy(out.Data(), a.bytes, n);
  return out;
}

// ---------------------------------------------------------------- handles and stats

// Type tags tell our externals apart, so a decap handle passed as a tunnel is a
// TypeError instead of a wild pointer.
const napi_type_tag kTunnelTag = {0x7666706c616e6501ull, 0x74756e6e656c0001ull};
const napi_type_tag kDecapTag = {0x7666706c616e6502ull, 0x6465636170000001ull};
const napi_type_tag kFdbTag = {0x7666706c616e6503ull, 0x6664620000000001ull};

// Counters shared by a handle and the zero-copy ArrayBuffer over them: whichever the GC
// finalizes last frees the memory. Finalizers run on the JS thread, so a plain int will do.
struct StatsBox {
  vfp_stats st;
  int refs;
};

StatsBox *StatsNew() {
  StatsBox *b = static_cast<StatsBox *>(CoreAlloc(nullptr, sizeof(StatsBox), VFP_CACHE_LINE));
  if (b) b->refs = 1;
  return b;
}
void StatsUnref(StatsBox *b) {
  if (b && --b->refs == 0) CoreFree(nullptr, b, sizeof *b);
}

// The native FDB outlives its JS object while a decap context still learns into it.
struct FdbCore {
  vfp_fdb *f;
  int refs;
  int64_t reported;  // bytes told to V8 as external memory
};

void FdbCoreUnref(Napi::Env env, FdbCore *c) {
  if (!c || --c->refs) return;
  Napi::MemoryManagement::AdjustExternalMemory(env, -c->reported);
  vfp_fdb__destroy(c->f);
  delete c;
}

struct TunnelH {
  vfp_tunnel t;
  StatsBox *stats;
  Napi::Reference<Napi::Value> view;  // the BigUint64Array stats() hands out
};

struct DecapH {
  vfp_decap_ctx c;
  vfp_vni_set vnis;
  void *vni_mem;
  size_t vni_bytes;
  StatsBox *stats;
  FdbCore *fdb;
  Napi::Reference<Napi::Value> view;
};

// One teardown per handle type, for the GC finalizer and every failed create alike.
void DestroyTunnel(Napi::Env, TunnelH *h) {
  StatsUnref(h->stats);
  delete h;
}

void DestroyDecap(Napi::Env env, DecapH *h) {
  StatsUnref(h->stats);
  FdbCoreUnref(env, h->fdb);
  free(h->vni_mem);
  delete h;
}

// Wraps a handle in a type-tagged External that destroys it when collected.
template <typename H>
Napi::Value TaggedExternal(Napi::Env env, H *h, const napi_type_tag &tag, void (*destroy)(Napi::Env, H *)) {
  auto ext = Napi::External<H>::New(env, h, destroy);
  if (Pending(env)) return Napi::Value();
  ext.TypeTag(&tag);
  if (Pending(env)) return Napi::Value();
  return ext;
}

template <typename H>
bool ToHandle(Napi::Env env, Napi::Value v, const napi_type_tag &tag, const std::string &name,
              const char *what, H **out) {
  if (!v.IsExternal() || !v.As<Napi::External<H>>().CheckTypeTag(&tag)) {
    if (!Pending(env)) ThrowType(env, name + " must be a " + what + " handle");
    return false;
  }
  *out = v.As<Napi::External<H>>().Data();
  return true;
}

constexpr size_t kStatsWords = offsetof(vfp_stats, drops) / 8 + VFP_R__COUNT;

void StatsViewFinalize(napi_env, void *, void *hint) { StatsUnref(static_cast<StatsBox *>(hint)); }

// A BigUint64Array over the live counters: created once per handle, then reused.
Napi::Value StatsView(Napi::Env env, StatsBox *box, Napi::Reference<Napi::Value> *cache) {
  if (!cache->IsEmpty()) return cache->Value();
  napi_value ab;
  napi_status s = napi_create_external_arraybuffer(env, &box->st, sizeof(vfp_stats), StatsViewFinalize,
                                                   box, &ab);
  if (s != napi_ok) {
    Napi::Error::New(env, "stats: cannot create an external ArrayBuffer").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  box->refs++;  // the ArrayBuffer's finalizer gives it back
  napi_value ta;
  s = napi_create_typedarray(env, napi_biguint64_array, kStatsWords, ab, 0, &ta);
  if (s != napi_ok) {
    Napi::Error::New(env, "stats: cannot create a BigUint64Array").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  Napi::Value v(env, ta);
  *cache = Napi::Persistent(v);
  return v;
}

// ---------------------------------------------------------------- bursts

struct BurstView {
  Span<uint8_t> buf;
  Span<uint32_t> off, len, room;
  Span<uint8_t> reason;
  Span<uint32_t> vni;
  Span<uint8_t> fam, vtep;
  uint32_t count = 0;
};

bool ToBurst(Napi::Env env, Napi::Value v, bool decap, BurstView *b) {
  if (!v.IsObject()) {
    ThrowType(env, "burst must be a Burst object");
    return false;
  }
  Napi::Value f;
  auto field = [&](const char *k) -> bool {
    if (!GetProp(env, v, k, &f)) return false;
    return true;
  };
  if (!field("buf") || !ToBytes(env, f, "burst.buf", &b->buf)) return false;
  if (!field("off") || !ToTyped<uint32_t>(env, f, "burst.off", napi_uint32_array, "Uint32Array", &b->off)) return false;
  if (!field("len") || !ToTyped<uint32_t>(env, f, "burst.len", napi_uint32_array, "Uint32Array", &b->len)) return false;
  if (!field("room") || !ToTyped<uint32_t>(env, f, "burst.room", napi_uint32_array, "Uint32Array", &b->room)) return false;
  if (!field("reason") || !ToBytes(env, f, "burst.reason", &b->reason)) return false;
  size_t cap = b->off.len;
  if (b->len.len < cap) cap = b->len.len;
  if (b->room.len < cap) cap = b->room.len;
  if (b->reason.len < cap) cap = b->reason.len;
  if (decap) {
    if (!field("vni") || !ToTyped<uint32_t>(env, f, "burst.vni", napi_uint32_array, "Uint32Array", &b->vni)) return false;
    if (!field("vtepFamily") || !ToBytes(env, f, "burst.vtepFamily", &b->fam)) return false;
    if (!field("vtep") || !ToBytes(env, f, "burst.vtep", &b->vtep)) return false;
    if (b->vni.len < cap) cap = b->vni.len;
    if (b->fam.len < cap) cap = b->fam.len;
    if (b->vtep.len / 16 < cap) cap = b->vtep.len / 16;
  }
  if (!field("count") || !ToUint(env, f, "burst.count", 0, static_cast<double>(cap), &b->count)) return false;
  return true;
}

bool PacketFits(const BurstView *b, uint32_t i) {
  uint64_t off = b->off.data[i], len = b->len.data[i], room = b->room.data[i];
  return off + len <= b->buf.len && room <= off;
}

void ThrowPacket(Napi::Env env, const BurstView *b, uint32_t i) {
  ThrowRange(env, "burst packet " + std::to_string(i) + ": off " + std::to_string(b->off.data[i]) + ", len " +
                      std::to_string(b->len.data[i]) + ", room " + std::to_string(b->room.data[i]) +
                      " do not fit burst.buf (" + std::to_string(b->buf.len) + " bytes)");
}

// Descriptors live on the stack, one chunk of ≤ VFP_MAX_BURST at a time: a JS burst
// costs no allocation. Each field the engine may change is written back; room too, so
// "bytes before off the engine may write" stays true for the next call. Bounds are
// checked as each chunk's descriptors are built, from the same reads that build them,
// so arrays that alias buf cannot slip a bad offset past the check. Returns the ok
// count, or -1 - i for the first packet i that does not fit (chunks before it ran).
template <typename Fn>
int64_t RunBurst(BurstView *b, bool decap, Fn engine) {
  vfp_pkt pk[VFP_MAX_BURST];
  vfp_pkt *pp[VFP_MAX_BURST];
  uint32_t ok = 0;
  for (uint32_t base = 0; base < b->count; base += VFP_MAX_BURST) {
    uint16_t n = static_cast<uint16_t>(b->count - base < VFP_MAX_BURST ? b->count - base : VFP_MAX_BURST);
    for (uint16_t i = 0; i < n; i++)
      if (!PacketFits(b, base + i)) return -1 - static_cast<int64_t>(base + i);
    for (uint16_t i = 0; i < n; i++) {
      vfp_pkt *p = &pk[i];
      p->data = b->buf.data + b->off.data[base + i];
      p->len = b->len.data[base + i];
      p->headroom = b->room.data[base + i];
      p->reason = 0;
      pp[i] = p;
    }
    ok += engine(pp, n);
    for (uint16_t i = 0; i < n; i++) {
      const vfp_pkt *p = &pk[i];
      const uint32_t k = base + i;
      b->reason.data[k] = p->reason;
      if (decap) {  // zeros on a drop (docs/vxlan-engine.md §4.2)
        b->vni.data[k] = p->vni;
        b->fam.data[k] = p->vtep_family;
        memcpy(b->vtep.data + 16 * static_cast<size_t>(k), p->vtep, 16);
      }
      if (p->reason != VFP_OK) continue;
      b->off.data[k] = static_cast<uint32_t>(p->data - b->buf.data);
      b->len.data[k] = p->len;
      b->room.data[k] = p->headroom;
    }
  }
  return ok;
}

// ---------------------------------------------------------------- tunnel / encap

bool ToTunnelCfg(Napi::Env env, Napi::Value v, vfp_tunnel_cfg *c) {
  if (!v.IsObject()) {
    ThrowType(env, "cfg must be a tunnel config object");
    return false;
  }
  memset(c, 0, sizeof *c);
  Napi::Value f;
  const uint8_t *mac;
  double d;
  bool b;
#define PROP(k) (GetProp(env, v, k, &f))
  if (!PROP("local") || !ToAddr(env, f, "cfg.local", &c->local)) return false;
  if (!PROP("remote") || !ToAddr(env, f, "cfg.remote", &c->remote)) return false;
  if (c->local.family != c->remote.family) {
    ThrowRange(env, "cfg.remote must be the same family as cfg.local");
    return false;
  }
  if (!PROP("srcMac") || !ToMac(env, f, "cfg.srcMac", &mac)) return false;
  memcpy(c->src_mac, mac, 6);
  if (!PROP("dstMac") || !ToMac(env, f, "cfg.dstMac", &mac)) return false;
  memcpy(c->dst_mac, mac, 6);
  if (!PROP("vlan") || !ToInt(env, f, "cfg.vlan", -1, 4094, &d)) return false;
  c->vlan = static_cast<int32_t>(d);
  if (!PROP("vlanPcp") || !ToUint(env, f, "cfg.vlanPcp", 0, 7, &c->vlan_pcp)) return false;
  if (!PROP("dstPort") || !ToUint(env, f, "cfg.dstPort", 1, 65535, &c->dst_port)) return false;
  if (!PROP("srcPortMin") || !ToUint(env, f, "cfg.srcPortMin", 1, 65535, &c->src_port_min)) return false;
  if (!PROP("srcPortMax") || !ToUint(env, f, "cfg.srcPortMax", c->src_port_min, 65535, &c->src_port_max)) return false;
  if (!PROP("ttl") || !ToUint(env, f, "cfg.ttl", 1, 255, &c->ttl)) return false;
  if (!PROP("tos") || !ToUint(env, f, "cfg.tos", 0, VFP_TOS_INHERIT, &c->tos)) return false;
  if (!PROP("df") || !ToUint(env, f, "cfg.df", 0, 2, &c->df)) return false;
  if (!PROP("udpCsum") || !ToBool(env, f, "cfg.udpCsum", &b)) return false;
  c->udp_csum = b;
  if (!PROP("mtu") || !ToUint(env, f, "cfg.mtu", 0, 65535, &c->mtu)) return false;
  if (c->mtu != 0 && c->mtu < 68) {
    ThrowRange(env, "cfg.mtu " + std::to_string(c->mtu) + " must be 0 or 68–65535");
    return false;
  }
  if (!PROP("ipId") || !ToUint(env, f, "cfg.ipId", 0, 65535, &c->ip_id)) return false;
  // Optional: the checksums left for a device (the data plane sets it from its uplink).
  if (!PROP("txOffload")) return false;
  if (!f.IsUndefined() && !ToUint(env, f, "cfg.txOffload", 0, VFP_TXO__ALL, &c->tx_offload)) return false;
#undef PROP
  return true;
}

bool ExportAll(Napi::Env env, Napi::Object exports, const ExportFn *fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    Napi::Function fn = Napi::Function::New(env, fns[i].fn, fns[i].name);
    if (Pending(env) || !exports.Set(fns[i].name, fn).UnwrapOr(false)) return false;
  }
  return true;
}

}  // namespace vfpglue

namespace {

using namespace vfpglue;

Napi::Value TunnelCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  vfp_tunnel_cfg cfg;
  if (!ToTunnelCfg(env, info[0], &cfg)) return Napi::Value();
  TunnelH *h = new TunnelH();
  h->stats = StatsNew();
  int rc = h->stats ? vfp_tunnel__init(&h->t, &cfg) : -ENOMEM;
  if (rc) {
    DestroyTunnel(env, h);
    return ThrowErrno(env, "tunnelCreate", rc);
  }
  return TaggedExternal(env, h, kTunnelTag, DestroyTunnel);
}

// The end of encap/decap: the ok count, or a RangeError naming the packet that does not
// fit the arena.
Napi::Value BurstResult(Napi::Env env, const BurstView *b, int64_t ok) {
  if (ok < 0) {
    ThrowPacket(env, b, static_cast<uint32_t>(-1 - ok));
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(ok));
}

Napi::Value Encap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  TunnelH *h;
  uint32_t vni;
  BurstView b;
  if (!ToHandle(env, info[0], kTunnelTag, "tunnel", "tunnel", &h)) return Napi::Value();
  if (!ToUint(env, info[1], "vni", 0, 0xffffff, &vni)) return Napi::Value();
  if (!ToBurst(env, info[2], false, &b)) return Napi::Value();
  return BurstResult(env, &b, RunBurst(&b, false, [&](vfp_pkt **pp, uint16_t n) {
    return vfp_vxlan__encap_burst(&h->t, vni, pp, n, &h->stats->st);
  }));
}

// txFinish(frame, ol, l2Len, l3Len): completes in software, in place, the outer checksums
// `ol` says encap left for a device, as a port without the offload does before sending.
Napi::Value TxFinish(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Span<uint8_t> s;
  uint8_t ol, l2, l3;
  if (!ToBytes(env, info[0], "frame", &s) || !ToUint(env, info[1], "ol", 0, 0xff, &ol) ||
      !ToUint(env, info[2], "l2Len", 14, 18, &l2) || !ToUint(env, info[3], "l3Len", 20, 40, &l3))
    return Napi::Value();
  if ((l3 != 20 && l3 != 40) || s.len < static_cast<size_t>(l2) + l3 + 8) {
    ThrowRange(env, "txFinish: a frame of " + std::to_string(s.len) + " bytes has no outer IP (l3Len " +
                        std::to_string(l3) + ", 20 or 40) and UDP header after " + std::to_string(l2) + " bytes");
    return Napi::Value();
  }
  vfp_pkt p{};
  p.data = s.data;
  p.len = static_cast<uint32_t>(s.len);
  p.tx_ol = ol;
  p.l2_len = l2;
  p.l3_len = l3;
  vfp_pkt__tx_finish(&p, VFP_TXO__ALL);
  return env.Undefined();
}

// The next IPv4 identification the tunnel will use (§3.2), for tests and dumps.
Napi::Value TunnelIpId(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  TunnelH *h;
  if (!ToHandle(env, info[0], kTunnelTag, "tunnel", "tunnel", &h)) return Napi::Value();
  return Napi::Number::New(env, h->t.ip_id);
}

// ---------------------------------------------------------------- FDB object

class Fdb : public Napi::ObjectWrap<Fdb> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeFdbRaw",
                       {
                           InstanceMethod<&Fdb::AddStatic>("addStatic"),
                           InstanceMethod<&Fdb::Del>("del"),
                           InstanceMethod<&Fdb::Learn>("learn"),
                           InstanceMethod<&Fdb::Get>("get"),
                           InstanceMethod<&Fdb::Lookup>("lookup"),
                           InstanceMethod<&Fdb::Vtep>("vtep"),
                           InstanceMethod<&Fdb::Resolve>("resolve"),
                           InstanceMethod<&Fdb::Age>("age"),
                           InstanceMethod<&Fdb::FloodSet>("floodSet"),
                           InstanceMethod<&Fdb::FloodGet>("floodGet"),
                           InstanceMethod<&Fdb::Count>("count"),
                           InstanceMethod<&Fdb::SetVniLimit>("setVniLimit"),
                           InstanceMethod<&Fdb::LearnedIn>("learnedIn"),
                           InstanceMethod<&Fdb::Capacity>("capacity"),
                           InstanceMethod<&Fdb::Slots>("slots"),
                           InstanceMethod<&Fdb::VtepCount>("vtepCount"),
                           InstanceMethod<&Fdb::MemBytes>("memBytes"),
                           InstanceMethod<&Fdb::PrimaryCount>("primaryCount"),
                           InstanceMethod<&Fdb::Entries>("entries"),
                           InstanceMethod<&Fdb::Close>("close"),
                       });
  }

  Fdb(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Fdb>(info) {
    Napi::Env env = info.Env();
    uint32_t cap;
    if (!ToUint(env, info[0], "capacity", 1, 1 << 24, &cap)) return;
    vfp_fdb *f = nullptr;
    int rc = vfp_fdb__create(&f, cap, &kAlloc);
    if (rc) {
      ThrowErrno(env, "fdbCreate(" + std::to_string(cap) + ")", rc);
      return;
    }
    core_ = new FdbCore{f, 1, static_cast<int64_t>(vfp_fdb__mem_bytes(f))};
    Napi::MemoryManagement::AdjustExternalMemory(env, core_->reported);
    info.This().As<Napi::Object>().TypeTag(&kFdbTag);
  }

  ~Fdb() override {
    if (core_) FdbCoreUnref(Env(), core_);
  }

  // For decap contexts that learn: a counted reference to the native table.
  FdbCore *Share() {
    if (core_) core_->refs++;
    return core_;
  }

 private:
  FdbCore *core_ = nullptr;
  uint32_t cursor_ = 0;

  bool Live(Napi::Env env) {
    if (core_) return true;
    Napi::Error::New(env, "this FDB was closed").ThrowAsJavaScriptException();
    return false;
  }
  vfp_fdb *F() { return core_->f; }

  // Keeps V8's idea of our size near the truth after learning or flood changes.
  void Report(Napi::Env env) {
    int64_t now = static_cast<int64_t>(vfp_fdb__mem_bytes(F()));
    if (now != core_->reported) {
      Napi::MemoryManagement::AdjustExternalMemory(env, now - core_->reported);
      core_->reported = now;
    }
  }

  Napi::Value AddStatic(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    const uint8_t *mac;
    vfp_addr a;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni) || !ToMac(env, info[1], "mac", &mac) ||
        !ToAddr(env, info[2], "vtep", &a))
      return Napi::Value();
    return Napi::Number::New(env, vfp_fdb__add_static(F(), vni, mac, &a));
  }

  Napi::Value Del(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    const uint8_t *mac;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni) || !ToMac(env, info[1], "mac", &mac))
      return Napi::Value();
    return Napi::Boolean::New(env, vfp_fdb__del(F(), vni, mac) == 0);
  }

  Napi::Value Learn(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni, now;
    const uint8_t *mac;
    vfp_addr a;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni) || !ToMac(env, info[1], "mac", &mac) ||
        !ToAddr(env, info[2], "vtep", &a) || !ToUint(env, info[3], "now", 0, 4294967295.0, &now))
      return Napi::Value();
    return Napi::Number::New(env, vfp_fdb__learn(F(), vni, mac, &a, now));
  }

  Napi::Value EntryValue(Napi::Env env, const vfp_fdb_entry_info &e) {
    Napi::Object o = Napi::Object::New(env);
    Napi::Uint8Array mac = Napi::Uint8Array::New(env, 6);
    if (Pending(env)) return Napi::Value();
    memcpy(mac.Data(), e.mac, 6);
    Napi::Value vtep = AddrValue(env, e.vtep);
    if (Pending(env)) return Napi::Value();
    if (!o.Set("vni", e.vni).UnwrapOr(false) || !o.Set("mac", mac).UnwrapOr(false) ||
        !o.Set("flags", e.flags).UnwrapOr(false) || !o.Set("stamp", e.stamp).UnwrapOr(false) ||
        !o.Set("vtep", vtep).UnwrapOr(false))
      return Napi::Value();
    return o;
  }

  Napi::Value Get(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    const uint8_t *mac;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni) || !ToMac(env, info[1], "mac", &mac))
      return Napi::Value();
    vfp_fdb_entry_info e;
    if (vfp_fdb__get(F(), vni, mac, &e) != 0) return env.Null();
    return EntryValue(env, e);
  }

  // lookup(vnis: Uint32Array, macs: Uint8Array of 6 per key, out: Uint16Array): the
  // packet-path bulk lookup, VFP_FDB_NO_VTEP (65535) on a miss.
  Napi::Value Lookup(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Span<uint32_t> vnis;
    Span<uint8_t> macs;
    Span<uint16_t> out;
    if (!Live(env) || !ToTyped<uint32_t>(env, info[0], "vnis", napi_uint32_array, "Uint32Array", &vnis) ||
        !ToBytes(env, info[1], "macs", &macs) ||
        !ToTyped<uint16_t>(env, info[2], "out", napi_uint16_array, "Uint16Array", &out))
      return Napi::Value();
    if (macs.len != vnis.len * 6 || out.len < vnis.len)
      return ThrowRange(env, "macs must hold 6 bytes per VNI and out one slot per VNI");
    for (size_t i = 0; i < vnis.len; i++)
      if (vnis.data[i] > 0xffffff) return ThrowRange(env, "vnis[" + std::to_string(i) + "] is above 16777215");
    const uint8_t *mp[VFP_MAX_BURST];
    for (size_t base = 0; base < vnis.len; base += VFP_MAX_BURST) {
      uint16_t n = static_cast<uint16_t>(vnis.len - base < VFP_MAX_BURST ? vnis.len - base : VFP_MAX_BURST);
      for (uint16_t i = 0; i < n; i++) mp[i] = macs.data + 6 * (base + i);
      vfp_fdb__lookup_bulk(F(), vnis.data + base, mp, n, out.data + base);
    }
    return env.Undefined();
  }

  Napi::Value Vtep(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint16_t idx;
    if (!Live(env) || !ToUint(env, info[0], "index", 0, 65535, &idx)) return Napi::Value();
    const vfp_addr *a = vfp_fdb__vtep(F(), idx);
    return a ? AddrValue(env, *a) : env.Null();
  }

  Napi::Value FloodArray(Napi::Env env, const uint16_t *idx, uint32_t n) {
    Napi::Array arr = Napi::Array::New(env, n);
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value a = AddrValue(env, *vfp_fdb__vtep(F(), idx[i]));
      if (Pending(env) || !arr.Set(i, a).UnwrapOr(false)) return Napi::Value();
    }
    return arr;
  }

  // resolve(vni, mac) → { vtep: bytes } for a unicast hit, { flood: bytes[] } otherwise.
  Napi::Value Resolve(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    const uint8_t *mac;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni) || !ToMac(env, info[1], "mac", &mac))
      return Napi::Value();
    uint16_t idx;
    const uint16_t *fl;
    uint32_t nf;
    Napi::Object o = Napi::Object::New(env);
    if (vfp_fdb__resolve(F(), vni, mac, &idx, &fl, &nf)) {
      Napi::Value a = AddrValue(env, *vfp_fdb__vtep(F(), idx));
      if (Pending(env) || !o.Set("vtep", a).UnwrapOr(false)) return Napi::Value();
    } else {
      Napi::Value arr = FloodArray(env, fl, nf);
      if (Pending(env) || !o.Set("flood", arr).UnwrapOr(false)) return Napi::Value();
    }
    return o;
  }

  // age(now, maxAge, budget) → entries removed; the scan cursor lives here.
  Napi::Value Age(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t now, max_age, budget;
    if (!Live(env) || !ToUint(env, info[0], "now", 0, 4294967295.0, &now) ||
        !ToUint(env, info[1], "maxAge", 0, 4294967295.0, &max_age) ||
        !ToUint(env, info[2], "budget", 0, 4294967295.0, &budget))
      return Napi::Value();
    uint32_t removed = vfp_fdb__age(F(), now, max_age, &cursor_, budget);
    return Napi::Number::New(env, removed);
  }

  Napi::Value FloodSet(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni)) return Napi::Value();
    if (!info[1].IsArray()) return ThrowType(env, "vteps must be an array of 4- or 16-byte Uint8Arrays");
    Napi::Array arr = info[1].As<Napi::Array>();
    uint32_t n = arr.Length();
    if (n > VFP_FDB_MAX_VTEPS) return ThrowRange(env, "vteps holds more than 65535 addresses");
    vfp_addr *list = n ? static_cast<vfp_addr *>(malloc(n * sizeof(vfp_addr))) : nullptr;
    if (n && !list) return ThrowErrno(env, "floodSet", -ENOMEM);
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value v;
      if (!arr.Get(i).UnwrapTo(&v) || !ToAddr(env, v, "vteps[" + std::to_string(i) + "]", &list[i])) {
        free(list);
        return Napi::Value();
      }
    }
    int rc = vfp_fdb__flood_set(F(), vni, list, n);
    free(list);
    Report(env);
    return Napi::Number::New(env, rc);
  }

  Napi::Value FloodGet(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni)) return Napi::Value();
    const uint16_t *idx;
    uint32_t n;
    vfp_fdb__flood_get(F(), vni, &idx, &n);
    return FloodArray(env, idx, n);
  }

  Napi::Value SetVniLimit(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t n;
    if (!Live(env) || !ToUint(env, info[0], "perVni", 0, 1 << 24, &n)) return Napi::Value();
    return Napi::Number::New(env, vfp_fdb__set_vni_limit(F(), n));
  }
  Napi::Value LearnedIn(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    if (!Live(env) || !ToUint(env, info[0], "vni", 0, 0xffffff, &vni)) return Napi::Value();
    return Napi::Number::New(env, vfp_fdb__learned_in(F(), vni));
  }
  Napi::Value Count(const Napi::CallbackInfo &info) {
    return Live(info.Env()) ? Napi::Number::New(info.Env(), vfp_fdb__count(F())) : Napi::Value();
  }
  Napi::Value Capacity(const Napi::CallbackInfo &info) {
    return Live(info.Env()) ? Napi::Number::New(info.Env(), vfp_fdb__capacity(F())) : Napi::Value();
  }
  Napi::Value Slots(const Napi::CallbackInfo &info) {
    return Live(info.Env()) ? Napi::Number::New(info.Env(), vfp_fdb__slots(F())) : Napi::Value();
  }
  Napi::Value VtepCount(const Napi::CallbackInfo &info) {
    return Live(info.Env()) ? Napi::Number::New(info.Env(), vfp_fdb__vtep_count(F())) : Napi::Value();
  }
  Napi::Value MemBytes(const Napi::CallbackInfo &info) {
    return Live(info.Env()) ? Napi::Number::New(info.Env(), static_cast<double>(vfp_fdb__mem_bytes(F())))
                            : Napi::Value();
  }
  Napi::Value PrimaryCount(const Napi::CallbackInfo &info) {
    return Live(info.Env()) ? Napi::Number::New(info.Env(), vfp_fdb__primary_count(F())) : Napi::Value();
  }

  // entries() → columns { count, vni, mac (6/entry), flags, stamp, family, vtep (16/entry) }:
  // a million entries as seven typed arrays instead of a million objects.
  Napi::Value Entries(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return Napi::Value();
    uint32_t n = vfp_fdb__count(F());
    Napi::Uint32Array vni = Napi::Uint32Array::New(env, n);
    Napi::Uint8Array mac = Napi::Uint8Array::New(env, static_cast<size_t>(n) * 6);
    Napi::Uint8Array flags = Napi::Uint8Array::New(env, n);
    Napi::Uint32Array stamp = Napi::Uint32Array::New(env, n);
    Napi::Uint8Array fam = Napi::Uint8Array::New(env, n);
    Napi::Uint8Array vtep = Napi::Uint8Array::New(env, static_cast<size_t>(n) * 16);
    if (Pending(env)) return Napi::Value();
    struct Cols {
      uint32_t i, n;
      uint32_t *vni, *stamp;
      uint8_t *mac, *flags, *fam, *vtep;
    } c = {0, n, vni.Data(), stamp.Data(), mac.Data(), flags.Data(), fam.Data(), vtep.Data()};
    vfp_fdb__walk(
        F(),
        [](const vfp_fdb_entry_info *e, void *arg) -> int {
          Cols *c = static_cast<Cols *>(arg);
          if (c->i == c->n) return 1;
          c->vni[c->i] = e->vni;
          memcpy(c->mac + 6 * static_cast<size_t>(c->i), e->mac, 6);
          c->flags[c->i] = e->flags;
          c->stamp[c->i] = e->stamp;
          c->fam[c->i] = e->vtep.family;
          memcpy(c->vtep + 16 * static_cast<size_t>(c->i), e->vtep.bytes, 16);
          c->i++;
          return 0;
        },
        &c);
    Napi::Object o = Napi::Object::New(env);
    if (!o.Set("count", c.i).UnwrapOr(false) || !o.Set("vni", vni).UnwrapOr(false) ||
        !o.Set("mac", mac).UnwrapOr(false) || !o.Set("flags", flags).UnwrapOr(false) ||
        !o.Set("stamp", stamp).UnwrapOr(false) || !o.Set("family", fam).UnwrapOr(false) ||
        !o.Set("vtep", vtep).UnwrapOr(false))
      return Napi::Value();
    return o;
  }

  // Frees the table now rather than at GC; a decap context still learning into it
  // keeps the native table until it is collected.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    if (core_) {
      FdbCoreUnref(info.Env(), core_);
      core_ = nullptr;
    }
    return info.Env().Undefined();
  }
};

struct AddonData {
  Napi::FunctionReference fdb_ctor;
};

Napi::Value FdbCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  AddonData *d = env.GetInstanceData<AddonData>();
  Napi::Object o;
  if (!d->fdb_ctor.New({info[0]}).UnwrapTo(&o)) return Napi::Value();
  return o;
}

// ---------------------------------------------------------------- decap

Napi::Value DecapCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Value cfg = info[0], f;
  if (!cfg.IsObject()) return ThrowType(env, "cfg must be a decap config object");
  uint16_t dst_port;
  bool verify, drop_vlan;
  if (!GetProp(env, cfg, "dstPort", &f) || !ToUint(env, f, "cfg.dstPort", 1, 65535, &dst_port)) return Napi::Value();
  if (!GetProp(env, cfg, "verifyUdpCsum", &f) || !ToBool(env, f, "cfg.verifyUdpCsum", &verify)) return Napi::Value();
  if (!GetProp(env, cfg, "dropInnerVlan", &f) || !ToBool(env, f, "cfg.dropInnerVlan", &drop_vlan)) return Napi::Value();

  Span<uint32_t> vnis;
  if (!GetProp(env, cfg, "vnis", &f)) return Napi::Value();
  if (!f.IsNull() && !f.IsUndefined() &&
      !ToTyped<uint32_t>(env, f, "cfg.vnis", napi_uint32_array, "Uint32Array or null", &vnis))
    return Napi::Value();
  for (size_t i = 0; i < vnis.len; i++)
    if (vnis.data[i] > 0xffffff) return ThrowRange(env, "cfg.vnis[" + std::to_string(i) + "] is above 16777215");

  vfp_addr locals[VFP_DECAP_MAX_LOCALS];
  uint32_t n_locals = 0;
  if (!GetProp(env, cfg, "locals", &f)) return Napi::Value();
  if (!f.IsNull() && !f.IsUndefined()) {
    if (!f.IsArray()) return ThrowType(env, "cfg.locals must be an array of 4- or 16-byte Uint8Arrays or null");
    Napi::Array arr = f.As<Napi::Array>();
    n_locals = arr.Length();
    if (n_locals > VFP_DECAP_MAX_LOCALS)
      return ThrowRange(env, "cfg.locals holds " + std::to_string(n_locals) + " addresses; at most " +
                                 std::to_string(VFP_DECAP_MAX_LOCALS) + " are supported");
    for (uint32_t i = 0; i < n_locals; i++) {
      Napi::Value v;
      if (!arr.Get(i).UnwrapTo(&v) || !ToAddr(env, v, "cfg.locals[" + std::to_string(i) + "]", &locals[i]))
        return Napi::Value();
    }
  }

  Fdb *fdb = nullptr;
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    if (!info[1].IsObject() || !info[1].As<Napi::Object>().CheckTypeTag(&kFdbTag)) {
      if (!Pending(env)) ThrowType(env, "fdb must be an FDB created by fdbCreate");
      return Napi::Value();
    }
    fdb = Fdb::Unwrap(info[1].As<Napi::Object>());
  }

  DecapH *h = new DecapH();
  memset(&h->c, 0, sizeof h->c);
  h->vni_mem = nullptr;
  h->fdb = nullptr;
  h->stats = StatsNew();
  if (!h->stats) {
    DestroyDecap(env, h);
    return ThrowErrno(env, "decapCreate", -ENOMEM);
  }
  h->c.dst_port = dst_port;
  h->c.verify_udp_csum = verify;
  h->c.drop_inner_vlan = drop_vlan;
  h->c.n_locals = static_cast<uint8_t>(n_locals);
  memcpy(h->c.locals, locals, n_locals * sizeof(vfp_addr));
  if (vnis.len) {
    h->vni_bytes = vfp_vni_set__mem_size(static_cast<uint32_t>(vnis.len));
    h->vni_mem = CoreAlloc(nullptr, h->vni_bytes, 64);
    if (!h->vni_mem) {
      DestroyDecap(env, h);
      return ThrowErrno(env, "decapCreate", -ENOMEM);
    }
    vfp_vni_set__init(&h->vnis, h->vni_mem, static_cast<uint32_t>(vnis.len));
    for (size_t i = 0; i < vnis.len; i++) vfp_vni_set__add(&h->vnis, vnis.data[i]);
    h->c.vnis = &h->vnis;
  }
  if (fdb) {
    h->fdb = fdb->Share();
    if (!h->fdb) {
      DestroyDecap(env, h);
      return ThrowType(env, "fdb was closed");
    }
    h->c.learn_fdb = h->fdb->f;
  }
  return TaggedExternal(env, h, kDecapTag, DestroyDecap);
}

Napi::Value DecapSetNow(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DecapH *h;
  uint32_t now;
  if (!ToHandle(env, info[0], kDecapTag, "decap", "decap", &h) ||
      !ToUint(env, info[1], "now", 0, 4294967295.0, &now))
    return Napi::Value();
  h->c.now = now;
  return env.Undefined();
}

Napi::Value Decap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DecapH *h;
  BurstView b;
  if (!ToHandle(env, info[0], kDecapTag, "decap", "decap", &h)) return Napi::Value();
  if (!ToBurst(env, info[1], true, &b)) return Napi::Value();
  return BurstResult(env, &b, RunBurst(&b, true, [&](vfp_pkt **pp, uint16_t n) {
    return vfp_vxlan__decap_burst(&h->c, pp, n, &h->stats->st);
  }));
}

Napi::Value Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Value v = info[0];
  if (v.IsExternal()) {
    if (v.As<Napi::External<TunnelH>>().CheckTypeTag(&kTunnelTag)) {
      TunnelH *h = v.As<Napi::External<TunnelH>>().Data();
      return StatsView(env, h->stats, &h->view);
    }
    if (v.As<Napi::External<DecapH>>().CheckTypeTag(&kDecapTag)) {
      DecapH *h = v.As<Napi::External<DecapH>>().Data();
      return StatsView(env, h->stats, &h->view);
    }
  }
  if (Pending(env)) return Napi::Value();
  return ThrowType(env, "handle must be a tunnel or decap handle");
}

// ---------------------------------------------------------------- misc

Napi::Value ReasonNames(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, VFP_R__COUNT);
  for (unsigned i = 0; i < VFP_R__COUNT; i++)
    if (!a.Set(i, Napi::String::New(env, vfp_reason__name(i))).UnwrapOr(false)) return Napi::Value();
  return a;
}

Napi::Value StatsLayout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  static const char *const head[] = {"encapPkts", "encapBytes", "decapPkts", "decapBytes",
                                     "learnNew", "learnMoved", "learnRefresh", "learnFull", "learnLimited"};
  static_assert(sizeof head / sizeof head[0] == offsetof(vfp_stats, drops) / 8, "stats head");
  Napi::Array a = Napi::Array::New(env, kStatsWords);
  uint32_t k = 0;
  for (const char *h : head)
    if (!a.Set(k++, Napi::String::New(env, h)).UnwrapOr(false)) return Napi::Value();
  for (unsigned i = 0; i < VFP_R__COUNT; i++)
    if (!a.Set(k++, Napi::String::New(env, std::string("drop.") + vfp_reason__name(i))).UnwrapOr(false))
      return Napi::Value();
  return a;
}

Napi::Value CpuFeatures(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  bool sse42 = false, avx2 = false;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  sse42 = __builtin_cpu_supports("sse4.2");
  avx2 = __builtin_cpu_supports("avx2");
#endif
  const char *impl = vfp_crc32c__selected() == VFP_CRC_HW ? "sse4.2" : "table";
  if (!o.Set("sse42", sse42).UnwrapOr(false) || !o.Set("avx2", avx2).UnwrapOr(false) ||
      !o.Set("crc32c", impl).UnwrapOr(false))
    return Napi::Value();
  return o;
}

bool ToCrcImpl(Napi::Env env, Napi::Value v, const std::string &name, int *impl) {
  if (v.IsUndefined()) {
    *impl = VFP_CRC_AUTO;
    return true;
  }
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "auto") *impl = VFP_CRC_AUTO;
  else if (s == "hw") *impl = VFP_CRC_HW;
  else if (s == "sw") *impl = VFP_CRC_SW;
  else {
    ThrowType(env, name + " must be 'auto', 'hw' or 'sw'");
    return false;
  }
  return true;
}

// crc32c(bytes, impl?) → the standard CRC-32C; 'hw' throws without SSE4.2.
Napi::Value Crc32c(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Span<uint8_t> s;
  int impl;
  if (!ToBytes(env, info[0], "bytes", &s) || !ToCrcImpl(env, info[1], "impl", &impl)) return Napi::Value();
  if (impl == VFP_CRC_HW && !vfp_crc32c__have_hw()) return ThrowErrno(env, "crc32c('hw')", -ENOTSUP);
  if (impl == VFP_CRC_AUTO) impl = vfp_crc32c__selected();
  return Napi::Number::New(env, vfp_crc32c__with(impl, s.data, s.len));
}

// crcSelect(impl) → the implementation the packet path now uses ('sse4.2' | 'table').
Napi::Value CrcSelect(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int impl;
  if (!ToCrcImpl(env, info[0], "impl", &impl)) return Napi::Value();
  int rc = vfp_crc32c__select(impl);
  if (rc) return ThrowErrno(env, "crcSelect", rc);
  return Napi::String::New(env, vfp_crc32c__selected() == VFP_CRC_HW ? "sse4.2" : "table");
}

// flowHash(frame) → { hash, tos, df, ip } as encap sees the inner frame (§3.3–3.4).
Napi::Value FlowHash(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Span<uint8_t> s;
  if (!ToBytes(env, info[0], "frame", &s)) return Napi::Value();
  if (s.len < 14) return ThrowRange(env, "frame must hold at least 14 bytes");
  if (s.len > 0xffffffffu) return ThrowRange(env, "frame is too long");
  uint16_t meta;
  uint32_t h = vfp_flowhash__frame(s.data, static_cast<uint32_t>(s.len), &meta);
  Napi::Object o = Napi::Object::New(env);
  if (!o.Set("hash", h).UnwrapOr(false) || !o.Set("tos", meta & 0xff).UnwrapOr(false) ||
      !o.Set("df", (meta & VFP_FLOW_DF) != 0).UnwrapOr(false) ||
      !o.Set("ip", (meta & VFP_FLOW_IP) != 0).UnwrapOr(false))
    return Napi::Value();
  return o;
}

// ---------------------------------------------------------------- benchmarks

// The frame list as vfp_mem_frame pointers into the JS buffers: valid for the call,
// which is synchronous, and the generator copies them in at setup anyway.
bool ToFrameList(Napi::Env env, Napi::Value v, vfp_mem_frame **out, uint32_t *n) {
  if (!v.IsArray()) {
    ThrowType(env, "frames must be an array of Uint8Arrays");
    return false;
  }
  Napi::Array arr = v.As<Napi::Array>();
  uint32_t len = arr.Length();
  if (len < 1 || len > 65536) {
    ThrowRange(env, "frames must hold 1–65536 frames");
    return false;
  }
  vfp_mem_frame *fr = static_cast<vfp_mem_frame *>(calloc(len, sizeof *fr));
  if (!fr) {
    ThrowErrno(env, "frames", -ENOMEM);
    return false;
  }
  for (uint32_t i = 0; i < len; i++) {
    Napi::Value e;
    Span<uint8_t> s;
    if (!arr.Get(i).UnwrapTo(&e) || !ToBytes(env, e, "frames[" + std::to_string(i) + "]", &s)) {
      free(fr);
      return false;
    }
    if (s.len > 65535) {
      free(fr);
      ThrowRange(env, "frames[" + std::to_string(i) + "] is longer than 65535 bytes");
      return false;
    }
    fr[i].bytes = s.data;
    fr[i].len = static_cast<uint32_t>(s.len);
  }
  *out = fr;
  *n = len;
  return true;
}

bool ToBenchOpts(Napi::Env env, Napi::Value o, vfp_bench_opts *b) {
  Napi::Value f;
  double d;
  if (!o.IsObject()) {
    ThrowType(env, "opts must be an object");
    return false;
  }
  if (!GetProp(env, o, "burst", &f) || !ToUint(env, f, "opts.burst", 1, VFP_MAX_BURST, &b->burst)) return false;
  if (!GetProp(env, o, "packets", &f) || !ToInt(env, f, "opts.packets", 1, 9007199254740991.0, &d)) return false;
  b->packets = static_cast<uint64_t>(d);
  if (!GetProp(env, o, "warmup", &f) || !ToInt(env, f, "opts.warmup", 0, 9007199254740991.0, &d)) return false;
  b->warmup = static_cast<uint64_t>(d);
  if (!GetProp(env, o, "cpu", &f) || !ToInt(env, f, "opts.cpu", -1, CPU_SETSIZE - 1, &d)) return false;
  b->cpu = static_cast<int>(d);
  if (!GetProp(env, o, "headroom", &f) || !ToUint(env, f, "opts.headroom", 0, 4096, &b->headroom)) return false;
  bool learn = false;
  if (!GetProp(env, o, "learn", &f)) return false;
  if (!f.IsUndefined() && !ToBool(env, f, "opts.learn", &learn)) return false;
  b->learn = learn;
  return true;
}

Napi::Value BenchResult(Napi::Env env, const vfp_bench_result &r) {
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char *k, double v) { return o.Set(k, v).UnwrapOr(false); };
  if (!num("packets", r.packets) || !num("ok", r.ok) || !num("ns", r.ns) || !num("bytesIn", r.bytes_in) ||
      !num("bytesOut", r.bytes_out) || !num("cpu", r.cpu) || !num("learnNew", r.stats.learn_new) ||
      !num("learnRefresh", r.stats.learn_refresh) || !num("learnMoved", r.stats.learn_moved) ||
      !num("learnFull", r.stats.learn_full))
    return Napi::Value();
  Napi::Object drops = Napi::Object::New(env);
  for (unsigned i = 1; i < VFP_R__COUNT; i++)
    if (r.stats.drops[i] && !drops.Set(vfp_reason__name(i), static_cast<double>(r.stats.drops[i])).UnwrapOr(false))
      return Napi::Value();
  if (!o.Set("drops", drops).UnwrapOr(false)) return Napi::Value();
  return o;
}

// benchEncap(tunnelCfg, vni, frames, opts) / benchDecap(...): synchronous; the loop
// runs on its own (optionally pinned) thread while this one waits.
Napi::Value BenchPkt(const Napi::CallbackInfo &info, bool decap) {
  Napi::Env env = info.Env();
  vfp_tunnel_cfg cfg;
  uint32_t vni;
  vfp_bench_opts o;
  memset(&o, 0, sizeof o);
  if (!ToTunnelCfg(env, info[0], &cfg) || !ToUint(env, info[1], "vni", 0, 0xffffff, &vni)) return Napi::Value();
  vfp_mem_frame *frames;
  uint32_t n;
  if (!ToFrameList(env, info[2], &frames, &n)) return Napi::Value();
  if (!ToBenchOpts(env, info[3], &o)) {
    free(frames);
    return Napi::Value();
  }
  o.frames = frames;
  o.n_frames = n;
  vfp_bench_result r;
  int rc = decap ? vfp_bench__decap(&cfg, vni, &o, &kAlloc, &r) : vfp_bench__encap(&cfg, vni, &o, &kAlloc, &r);
  free(frames);
  if (rc) return ThrowErrno(env, decap ? "benchDecap" : "benchEncap", rc);
  return BenchResult(env, r);
}

Napi::Value BenchEncap(const Napi::CallbackInfo &info) { return BenchPkt(info, false); }
Napi::Value BenchDecap(const Napi::CallbackInfo &info) { return BenchPkt(info, true); }

// benchFdb({ entries, vteps, lookups, burst, seed, cpu }).
Napi::Value BenchFdb(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Value o = info[0], f;
  vfp_bench_fdb_opts b;
  double d;
  memset(&b, 0, sizeof b);
  if (!o.IsObject()) return ThrowType(env, "opts must be an object");
  if (!GetProp(env, o, "entries", &f) || !ToUint(env, f, "opts.entries", 1, 1 << 24, &b.entries)) return Napi::Value();
  if (!GetProp(env, o, "vteps", &f) || !ToUint(env, f, "opts.vteps", 1, 65535, &b.vteps)) return Napi::Value();
  if (!GetProp(env, o, "lookups", &f) || !ToInt(env, f, "opts.lookups", 1, 9007199254740991.0, &d))
    return Napi::Value();
  b.lookups = static_cast<uint64_t>(d);
  if (!GetProp(env, o, "burst", &f) || !ToUint(env, f, "opts.burst", 1, VFP_MAX_BURST, &b.burst)) return Napi::Value();
  if (!GetProp(env, o, "seed", &f) || !ToInt(env, f, "opts.seed", 0, 9007199254740991.0, &d)) return Napi::Value();
  b.seed = static_cast<uint64_t>(d);
  if (!GetProp(env, o, "cpu", &f) || !ToInt(env, f, "opts.cpu", -1, CPU_SETSIZE - 1, &d)) return Napi::Value();
  b.cpu = static_cast<int>(d);
  vfp_bench_fdb_result r;
  int rc = vfp_bench__fdb(&b, &kAlloc, &r);
  if (rc) return ThrowErrno(env, "benchFdb", rc);
  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char *k, double v) { return out.Set(k, v).UnwrapOr(false); };
  if (!num("lookups", r.lookups) || !num("hits", r.hits) || !num("ns", r.ns) || !num("keygenNs", r.keygen_ns) ||
      !num("insertNs", r.insert_ns) || !num("verified", r.verified) || !num("wrong", r.wrong) ||
      !num("memBytes", static_cast<double>(r.mem_bytes)) || !num("slots", r.slots) ||
      !num("primary", r.primary) || !num("cpu", r.cpu))
    return Napi::Value();
  return out;
}

// ---------------------------------------------------------------- netops

// netopsRun(netnsPath | null, ops[]) runs a batch of link/address/route/sysctl changes
// inside a network namespace on a thread of its own (native/net/netops.c). Returns one
// entry per op: the link for linkGet (or null when absent), else null. A failure throws
// an Error with code (EEXIST, ENODEV…) and index (the op that failed); ops after it did
// not run, ops before it did.
bool OpStr(Napi::Env env, Napi::Object o, const char *key, char *dst, size_t cap, bool required, int i) {
  Napi::Value v;
  if (!GetProp(env, o, key, &v)) return false;
  if (v.IsUndefined() || v.IsNull()) {
    if (required) ThrowType(env, "ops[" + std::to_string(i) + "]." + key + " is required");
    return !required;
  }
  if (!v.IsString()) {
    ThrowType(env, "ops[" + std::to_string(i) + "]." + key + " must be a string");
    return false;
  }
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.size() >= cap || s.find('\0') != std::string::npos) {
    ThrowRange(env, "ops[" + std::to_string(i) + "]." + key + " is too long");
    return false;
  }
  memcpy(dst, s.c_str(), s.size() + 1);
  return true;
}

bool OpInt(Napi::Env env, Napi::Object o, const char *key, int *dst, int def, int min, int max, int i) {
  Napi::Value v;
  if (!GetProp(env, o, key, &v)) return false;
  if (v.IsUndefined() || v.IsNull()) {
    *dst = def;
    return true;
  }
  if (v.IsBoolean()) {
    *dst = v.As<Napi::Boolean>().Value() ? 1 : 0;
    return true;
  }
  double d;
  if (!ToInt(env, v, "ops[" + std::to_string(i) + "]." + key, min, max, &d)) return false;
  *dst = static_cast<int>(d);
  return true;
}

bool OpIp(Napi::Env env, Napi::Object o, const char *key, vfp_netop *op, uint8_t *dst, int *has, int i) {
  char buf[64] = {0};
  if (!OpStr(env, o, key, buf, sizeof(buf), false, i)) return false;
  if (!buf[0]) {
    if (has) *has = 0;
    return true;
  }
  int fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(fam, buf, dst) != 1 || (op->family && op->family != fam)) {
    ThrowRange(env, "ops[" + std::to_string(i) + "]." + key + " " + buf + " is not an address of the op's family");
    return false;
  }
  op->family = fam;
  if (has) *has = 1;
  return true;
}

// Converts netopsRun's arguments; false (with a JS exception pending) when they are bad.
bool ToNetops(const Napi::CallbackInfo &info, std::string *nsOut, std::vector<vfp_netop> *opsOut) {
  Napi::Env env = info.Env();
  std::string ns;
  if (info.Length() < 2 || !info[1].IsArray()) {
    ThrowType(env, "netopsRun(netnsPath, ops[])");
    return false;
  }
  if (info[0].IsString()) ns = info[0].As<Napi::String>().Utf8Value();
  else if (!info[0].IsNull() && !info[0].IsUndefined()) {
    ThrowType(env, "netnsPath must be a string or null");
    return false;
  }
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<vfp_netop> ops(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v;
    if (!arr.Get(i).UnwrapTo(&v)) return false;
    if (!v.IsObject()) {
      ThrowType(env, "ops[" + std::to_string(i) + "] must be an object");
      return false;
    }
    Napi::Object o = v.As<Napi::Object>();
    vfp_netop &op = ops[i];
    memset(&op, 0, sizeof(op));
    int ii = static_cast<int>(i);
    char mac[32] = {0};
    if (!OpInt(env, o, "kind", &op.kind, -1, 0, VFP_NETOP_LINK_LIST, ii) ||
        !OpStr(env, o, "name", op.name, sizeof(op.name), false, ii) ||
        !OpStr(env, o, "newName", op.new_name, sizeof(op.new_name), false, ii) ||
        !OpStr(env, o, "mac", mac, sizeof(mac), false, ii) ||
        !OpInt(env, o, "mtu", &op.mtu, 0, 0, 65535, ii) ||
        !OpInt(env, o, "up", &op.up, -1, -1, 1, ii) ||
        !OpStr(env, o, "netnsPath", op.netns_path, sizeof(op.netns_path), false, ii) ||
        !OpIp(env, o, "addr", &op, op.addr, nullptr, ii) ||
        !OpInt(env, o, "prefix", &op.prefix, 0, 0, 128, ii) ||
        !OpInt(env, o, "nodad", &op.nodad, 0, 0, 1, ii) ||
        !OpIp(env, o, "gw", &op, op.gw, &op.has_gw, ii) ||
        !OpStr(env, o, "path", op.path, sizeof(op.path), false, ii) ||
        !OpStr(env, o, "value", op.value, sizeof(op.value), false, ii) ||
        !OpInt(env, o, "optional", &op.optional, 0, 0, 1, ii) ||
        !OpInt(env, o, "aggClear", &op.agg_clear, 0, 0, VFP_RX_AGG__ALL, ii) ||
        !OpInt(env, o, "aggSet", &op.agg_set, 0, 0, VFP_RX_AGG__ALL, ii) ||
        !OpInt(env, o, "ifindex", &op.want_ifindex, 0, 0, 0x7fffffff, ii))
      return false;
    if (op.kind < 0) {
      ThrowType(env, "ops[" + std::to_string(i) + "].kind is required");
      return false;
    }
    if (mac[0]) {
      unsigned b[6];
      if (sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
        ThrowRange(env, "ops[" + std::to_string(i) + "].mac " + std::string(mac) + " is not a MAC address");
        return false;
      }
      for (int k = 0; k < 6; k++) op.mac[k] = static_cast<uint8_t>(b[k]);
      op.has_mac = 1;
    }
  }
  *nsOut = ns;
  *opsOut = std::move(ops);
  return true;
}

Napi::Error NetopsError(Napi::Env env, const std::string &ns, int err, int failed) {
  const char *name = strerrorname_np(-err);
  std::string what = failed >= 0 ? "op " + std::to_string(failed) : (ns.empty() ? std::string("netops") : "entering " + ns);
  std::string why = strerror(-err);
  // setns() on a file that is no namespace (a directory, a plain file) says only EINVAL.
  if (failed < 0 && !ns.empty() && (err == -EINVAL || err == -ENOENT))
    why = std::string(err == -ENOENT ? "no such file" : "not a network namespace file") +
          "; give one such as /run/netns/NAME or /proc/PID/ns/net";
  Napi::Error e = Napi::Error::New(env, what + ": " + why);
  e.Set("code", Napi::String::New(env, name ? name : "EIO"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("index", Napi::Number::New(env, failed));
  return e;
}

Napi::Value NetopsResults(Napi::Env env, const std::vector<vfp_netop> &ops) {
  Napi::Array out = Napi::Array::New(env, ops.size());
  for (uint32_t i = 0; i < ops.size(); i++) {
    const vfp_netop &op = ops[i];
    Napi::Value r = env.Null();
    if ((op.kind == VFP_NETOP_LINK_GET || op.kind == VFP_NETOP_ADDR_LIST) && op.found) {
      Napi::Object l = Napi::Object::New(env);
      char mac[18];
      snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", op.out_mac[0], op.out_mac[1], op.out_mac[2],
               op.out_mac[3], op.out_mac[4], op.out_mac[5]);
      l.Set("ifindex", Napi::Number::New(env, op.ifindex));
      l.Set("mac", Napi::String::New(env, mac));
      l.Set("mtu", Napi::Number::New(env, op.out_mtu));
      l.Set("up", Napi::Boolean::New(env, op.out_up != 0));
      l.Set("running", Napi::Boolean::New(env, op.out_running != 0));
      l.Set("name", Napi::String::New(env, op.out_name));
      r = l;
    }
    if (op.kind == VFP_NETOP_ADDR_LIST && op.found) {
      Napi::Object l = r.As<Napi::Object>();
      int n = op.out_naddrs < VFP_NETOP_MAX_ADDRS ? op.out_naddrs : VFP_NETOP_MAX_ADDRS;
      Napi::Array addrs = Napi::Array::New(env, n);
      for (int k = 0; k < n; k++) {
        const vfp_netop_addr &a = op.out_addrs[k];
        char txt[INET6_ADDRSTRLEN] = {0};
        inet_ntop(a.family == AF_INET ? AF_INET : AF_INET6, a.addr, txt, sizeof(txt));
        Napi::Object x = Napi::Object::New(env);
        x.Set("family", Napi::String::New(env, a.family == AF_INET ? "inet" : "inet6"));
        x.Set("local", Napi::String::New(env, txt));
        x.Set("prefixlen", Napi::Number::New(env, a.prefix));
        x.Set("scope", Napi::String::New(env, a.scope == RT_SCOPE_LINK ? "link" : a.scope == RT_SCOPE_HOST ? "host" : a.scope == RT_SCOPE_UNIVERSE ? "global" : std::to_string(a.scope)));
        addrs.Set(k, x);
      }
      l.Set("addrs", addrs);
      l.Set("more", Napi::Number::New(env, op.out_naddrs - n));
      r = l;
    }
    if (op.kind == VFP_NETOP_RX_AGG) {
      Napi::Object x = Napi::Object::New(env);
      x.Set("agg", Napi::Number::New(env, op.out_agg));
      x.Set("aggFixed", Napi::Number::New(env, op.out_agg_fixed));
      r = x;
    }
    if (op.kind == VFP_NETOP_LINK_LIST && (!op.want_ifindex || op.found)) {
      // As `ip -d -j link show` names the fields: link_index only for a link in another
      // namespace (iproute2 names one in this namespace by its name, "link").
      int n = op.out_nlinks < VFP_NETOP_MAX_LINKS ? op.out_nlinks : VFP_NETOP_MAX_LINKS;
      Napi::Array links = Napi::Array::New(env, n);
      for (int k = 0; k < n; k++) {
        const vfp_netop_link &l = op.out_links[k];
        Napi::Object x = Napi::Object::New(env);
        x.Set("ifindex", Napi::Number::New(env, l.ifindex));
        x.Set("ifname", Napi::String::New(env, l.name));
        if (l.link && l.has_netnsid) x.Set("link_index", Napi::Number::New(env, l.link));
        if (l.has_netnsid) x.Set("link_netnsid", Napi::Number::New(env, l.netnsid));
        if (l.kind[0]) {
          Napi::Object li = Napi::Object::New(env);
          li.Set("info_kind", Napi::String::New(env, l.kind));
          x.Set("linkinfo", li);
        }
        if (l.parent[0]) x.Set("parentdev", Napi::String::New(env, l.parent));
        links.Set(k, x);
      }
      Napi::Object x = Napi::Object::New(env);
      x.Set("links", links);
      x.Set("more", Napi::Number::New(env, op.out_nlinks - n));
      r = x;
    }
    if (!out.Set(i, r).UnwrapOr(false)) return Napi::Value();
  }
  return out;
}

Napi::Value NetopsRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ns;
  std::vector<vfp_netop> ops;
  if (!ToNetops(info, &ns, &ops)) return Napi::Value();
  int failed = -1;
  int err = vfp_netops_run(ns.c_str(), ops.data(), static_cast<int>(ops.size()), &failed);
  if (err) {
    NetopsError(env, ns, err, failed).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return NetopsResults(env, ops);
}

// The same batch off the JS thread: a moving netdev waits for RCU grace periods, and a
// long-running server must keep answering meanwhile. The libuv pool thread only waits;
// the namespace is entered by netops' own thread, so pool threads never change netns.
class NetopsWorker : public Napi::AsyncWorker {
 public:
  NetopsWorker(Napi::Env env, std::string ns, std::vector<vfp_netop> ops)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), ns_(std::move(ns)), ops_(std::move(ops)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { err_ = vfp_netops_run(ns_.c_str(), ops_.data(), static_cast<int>(ops_.size()), &failed_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_) {
      deferred_.Reject(NetopsError(env, ns_, err_, failed_).Value());
      return;
    }
    Napi::Value r = NetopsResults(env, ops_);
    if (env.IsExceptionPending()) {
      deferred_.Reject(env.GetAndClearPendingException().Value());
      return;
    }
    deferred_.Resolve(r);
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string ns_;
  std::vector<vfp_netop> ops_;
  int err_ = 0;
  int failed_ = -1;
};

Napi::Value NetopsRunAsync(const Napi::CallbackInfo &info) {
  std::string ns;
  std::vector<vfp_netop> ops;
  if (!ToNetops(info, &ns, &ops)) return Napi::Value();
  NetopsWorker *w = new NetopsWorker(info.Env(), std::move(ns), std::move(ops));
  Napi::Promise p = w->Promise();
  w->Queue();  // deleted by node-addon-api after OnOK/OnError
  return p;
}

// probeSocket(family, type): 0 when this kernel lets us open such a socket, else -errno.
// `vfplane doctor` asks it about AF_XDP (44) and AF_PACKET (17) before any backend runs.
Napi::Value ProbeSocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double fam, type;
  if (info.Length() < 2 || !ToInt(env, info[0], "family", 0, 64, &fam) || !ToInt(env, info[1], "type", 0, 16, &type))
    return Napi::Value();
  int fd = socket(static_cast<int>(fam), static_cast<int>(type) | SOCK_CLOEXEC, 0);
  int r = fd < 0 ? -errno : 0;
  if (fd >= 0) close(fd);
  return Napi::Number::New(env, r);
}

// ---------------------------------------------------------------- module

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  AddonData *d = new AddonData();
  Napi::Function ctor = Fdb::Define(env);
  if (Pending(env)) {
    delete d;
    return exports;
  }
  d->fdb_ctor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(d);  // deleted by node-addon-api at env teardown

  static const ExportFn fns[] = {
      {"reasonNames", ReasonNames}, {"statsLayout", StatsLayout}, {"cpuFeatures", CpuFeatures},
      {"crc32c", Crc32c},           {"crcSelect", CrcSelect},     {"flowHash", FlowHash},
      {"tunnelCreate", TunnelCreate}, {"tunnelIpId", TunnelIpId}, {"encap", Encap}, {"txFinish", TxFinish},
      {"decapCreate", DecapCreate}, {"decapSetNow", DecapSetNow}, {"decap", Decap},
      {"stats", Stats},             {"fdbCreate", FdbCreate},     {"benchEncap", BenchEncap},
      {"benchDecap", BenchDecap},   {"benchFdb", BenchFdb},       {"netopsRun", NetopsRun},       {"netopsRunAsync", NetopsRunAsync},
      {"probeSocket", ProbeSocket},
  };
  if (!ExportAll(env, exports, fns, sizeof fns / sizeof fns[0])) return exports;
  RegisterDataplane(env, exports);
  if (Pending(env)) return exports;
  RegisterProc(env, exports);
  if (Pending(env)) return exports;
  if (!exports.Set("maxBurst", Napi::Number::New(env, VFP_MAX_BURST)).UnwrapOr(false)) return exports;
  if (!exports.Set("noVtep", Napi::Number::New(env, VFP_FDB_NO_VTEP)).UnwrapOr(false)) return exports;
  return exports;
}

}  // namespace

NODE_API_MODULE(vfplane_native, Init)
