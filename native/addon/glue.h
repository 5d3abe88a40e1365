// Argument conversion and error helpers shared by the addon's glue files (addon.cc,
// dp.cc): each throws a TypeError/RangeError naming the argument and returns false.
#ifndef VFP_ADDON_GLUE_H
#define VFP_ADDON_GLUE_H

#define NODE_ADDON_API_ENABLE_MAYBE
#include <napi.h>

#include <string>

#include "core/vfp.h"
#include "core/vxlan.h"

namespace vfpglue {

void *CoreAlloc(void *, size_t size, size_t align);
void CoreFree(void *, void *p, size_t);
extern const vfp_alloc kAlloc;

Napi::Value ThrowType(Napi::Env env, const std::string &msg);
Napi::Value ThrowRange(Napi::Env env, const std::string &msg);
Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int neg);
bool Pending(Napi::Env env);
bool GetProp(Napi::Env env, Napi::Value obj, const char *key, Napi::Value *out);
bool ToInt(Napi::Env env, Napi::Value v, const std::string &name, double min, double max, double *out);
bool ToBool(Napi::Env env, Napi::Value v, const std::string &name, bool *out);

template <typename T>
bool ToUint(Napi::Env env, Napi::Value v, const std::string &name, double min, double max, T *out) {
  double d;
  if (!ToInt(env, v, name, min, max, &d)) return false;
  *out = static_cast<T>(d);
  return true;
}

template <typename T>
struct Span {
  T *data = nullptr;
  size_t len = 0;
};

template <typename T>
bool ToTyped(Napi::Env env, Napi::Value v, const std::string &name, napi_typedarray_type type,
             const char *tname, Span<T> *out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    ThrowType(env, name + " must be a " + tname);
    return false;
  }
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  out->data = a.Data();
  out->len = a.ElementLength();
  return !Pending(env);
}

bool ToBytes(Napi::Env env, Napi::Value v, const std::string &name, Span<uint8_t> *out);
bool ToMac(Napi::Env env, Napi::Value v, const std::string &name, const uint8_t **mac);
bool ToAddr(Napi::Env env, Napi::Value v, const std::string &name, vfp_addr *a);
Napi::Value AddrValue(Napi::Env env, const vfp_addr &a);
bool ToTunnelCfg(Napi::Env env, Napi::Value v, vfp_tunnel_cfg *c);

// One exported function: its JS name and its implementation.
struct ExportFn {
  const char *name;
  Napi::Value (*fn)(const Napi::CallbackInfo &);
};
// Sets each function on exports; false (with a pending exception) on the first failure.
bool ExportAll(Napi::Env env, Napi::Object exports, const ExportFn *fns, size_t n);

// The data-plane functions (addon/dp.cc), registered by Init.
void RegisterDataplane(Napi::Env env, Napi::Object exports);
// Child processes without fork (addon/proc.cc), registered by Init.
void RegisterProc(Napi::Env env, Napi::Object exports);

}  // namespace vfpglue

#endif
