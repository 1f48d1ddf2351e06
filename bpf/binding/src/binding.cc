// Small N-API binding over system libbpf: objects with pinned-map reuse, map
// operations by fd, inner-map creation for map-in-map swaps, tc attach,
// BPF_PROG_TEST_RUN and ringbuf consumption on the libuv loop (uv_poll on the
// ring buffer's epoll fd, so nothing busy-waits). Every failure throws an
// Error with `errno`, `code` (e.g. "ENOENT"), `op` and, where libbpf logged
// something (the verifier log on a failed load), `log`.
#include <napi.h>
#include <uv.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <string>
#include <vector>

namespace {

// libbpf's log (including the verifier log) goes here while a call runs.
std::string g_log;

int CaptureLog(enum libbpf_print_level level, const char *fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // A verifier log arrives as one message of up to megabytes, its cause at
  // the end: format it whole (a fixed buffer kept only its first 4 KiB).
  if (g_log.size() >= (4u << 20)) return 0;
  va_list copy;
  va_copy(copy, args);
  char buf[4096];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n > 0 && static_cast<size_t>(n) < sizeof(buf)) {
    g_log.append(buf, n);
  } else if (n > 0) {
    std::string whole(static_cast<size_t>(n) + 1, '\0');
    vsnprintf(whole.data(), whole.size(), fmt, copy);
    whole.resize(static_cast<size_t>(n));
    g_log.append(whole);
  }
  va_end(copy);
  return 0;
}

const char *ErrnoName(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ERANGE: return "ERANGE";
    case ENOTSUP: return "ENOTSUP";  // == EOPNOTSUPP on Linux
    case ENOSYS: return "ENOSYS";
    case 524: return "ENOTSUPP";  // kernel-internal, returned by some bpf(2) paths
    default: return "E?";
  }
}

[[noreturn]] void Throw(Napi::Env env, const std::string &op, int err) {
  if (err < 0) err = -err;
  char msg[256];
  libbpf_strerror(err, msg, sizeof(msg));
  std::string text = op + ": " + msg + " (errno " + std::to_string(err) + ")";
  Napi::Error e = Napi::Error::New(env, text);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("op", Napi::String::New(env, op));
  if (!g_log.empty()) e.Set("log", Napi::String::New(env, g_log));
  throw e;
}

std::vector<uint8_t> Bytes(const Napi::Value &v, const char *what) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Uint8Array");
  auto a = v.As<Napi::Uint8Array>();
  return std::vector<uint8_t>(a.Data(), a.Data() + a.ByteLength());
}

int Int(const Napi::Value &v, const char *what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

uint32_t U32(const Napi::Value &v, const char *what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

// ------------------------------------------------------------------ objects

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {InstanceMethod("maps", &BpfObject::Maps), InstanceMethod("programs", &BpfObject::Programs),
                        InstanceMethod("close", &BpfObject::Close)});
  }

  // new BpfObject(path, pinRoot | null, maxEntries: {name: n})
  BpfObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObject>(info) {
    Napi::Env env = info.Env();
    std::string path = info[0].As<Napi::String>();
    std::string pin_root;
    bool pinned = info[1].IsString();
    if (pinned) pin_root = info[1].As<Napi::String>();
    g_log.clear();
    LIBBPF_OPTS(bpf_object_open_opts, opts);
    if (pinned) opts.pin_root_path = pin_root.c_str();
    struct bpf_object *obj = bpf_object__open_file(path.c_str(), &opts);
    long err = libbpf_get_error(obj);
    if (err) Throw(env, "bpf_object__open_file " + path, (int)err);
    if (info[2].IsObject()) {
      Napi::Object sizes = info[2].As<Napi::Object>();
      Napi::Array names = sizes.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); i++) {
        std::string name = names.Get(i).As<Napi::String>();
        struct bpf_map *m = bpf_object__find_map_by_name(obj, name.c_str());
        if (!m) {
          bpf_object__close(obj);
          Throw(env, "no map named " + name + " in " + path, ENOENT);
        }
        int r = bpf_map__set_max_entries(m, U32(sizes.Get(name), "max entries"));
        if (r) {
          bpf_object__close(obj);
          Throw(env, "bpf_map__set_max_entries " + name, r);
        }
      }
    }
    if (!pinned) {
      struct bpf_map *m;
      bpf_object__for_each_map(m, obj) bpf_map__set_pin_path(m, nullptr);
    }
    int r = bpf_object__load(obj);
    if (r) {
      bpf_object__close(obj);
      Throw(env, "bpf_object__load " + path, r);
    }
    obj_ = obj;
  }

  ~BpfObject() override {
    if (obj_) bpf_object__close(obj_);
  }

 private:
  Napi::Value Maps(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (!obj_) return out;
    struct bpf_map *m;
    uint32_t i = 0;
    bpf_object__for_each_map(m, obj_) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(m));
      o.Set("fd", bpf_map__fd(m));
      o.Set("type", (int)bpf_map__type(m));
      o.Set("keySize", bpf_map__key_size(m));
      o.Set("valueSize", bpf_map__value_size(m));
      o.Set("maxEntries", bpf_map__max_entries(m));
      o.Set("mapFlags", bpf_map__map_flags(m));
      o.Set("pinPath", bpf_map__pin_path(m) ? Napi::Value(Napi::String::New(env, bpf_map__pin_path(m))) : env.Null());
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value Programs(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (!obj_) return out;
    struct bpf_program *p;
    uint32_t i = 0;
    bpf_object__for_each_program(p, obj_) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_program__name(p));
      o.Set("fd", bpf_program__fd(p));
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
    return info.Env().Undefined();
  }

  struct bpf_object *obj_ = nullptr;
};

// --------------------------------------------------------------- map ops

Napi::Value MapLookup(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info[0], "fd");
  auto key = Bytes(info[1], "key");
  uint32_t size = U32(info[2], "value size");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, size);
  if (bpf_map_lookup_elem(fd, key.data(), out.Data())) {
    if (errno == ENOENT) return env.Null();
    Throw(env, "bpf_map_lookup_elem", errno);
  }
  return out;
}

Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info[0], "fd");
  auto key = Bytes(info[1], "key");
  auto value = Bytes(info[2], "value");
  uint64_t flags = info[3].IsNumber() ? U32(info[3], "flags") : (uint64_t)BPF_ANY;
  if (bpf_map_update_elem(fd, key.data(), value.data(), flags)) Throw(env, "bpf_map_update_elem", errno);
  return env.Undefined();
}

Napi::Value MapDelete(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info[0], "fd");
  auto key = Bytes(info[1], "key");
  if (bpf_map_delete_elem(fd, key.data())) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    Throw(env, "bpf_map_delete_elem", errno);
  }
  return Napi::Boolean::New(env, true);
}

// mapUpdateBatch(fd, keys (count*keySize bytes), values, count, flags)
// Falls back to one update per entry where the map type has no batch op
// (LPM tries before 6.x, map-in-map); the result is the same.
Napi::Value MapUpdateBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info[0], "fd");
  auto keys = Bytes(info[1], "keys");
  auto values = Bytes(info[2], "values");
  uint32_t count = U32(info[3], "count");
  uint64_t flags = info[4].IsNumber() ? U32(info[4], "flags") : (uint64_t)BPF_ANY;
  if (count == 0) return Napi::Number::New(env, 0);
  if (keys.size() % count || values.size() % count)
    throw Napi::RangeError::New(env, "keys/values length is not a multiple of count");
  size_t ks = keys.size() / count, vs = values.size() / count;
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
  uint32_t n = count;
  int r = bpf_map_update_batch(fd, keys.data(), values.data(), &n, &opts);
  if (r == 0) return Napi::Number::New(env, n);
  int e = errno;
  if (e != EINVAL && e != ENOTSUP && e != EOPNOTSUPP) Throw(env, "bpf_map_update_batch", e);
  for (uint32_t i = 0; i < count; i++) {
    if (bpf_map_update_elem(fd, keys.data() + i * ks, values.data() + i * vs, flags))
      Throw(env, "bpf_map_update_elem (batch entry " + std::to_string(i) + ")", errno);
  }
  return Napi::Number::New(env, count);
}

Napi::Value MapNextKey(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info[0], "fd");
  uint32_t ks = U32(info[2], "key size");
  std::vector<uint8_t> prev;
  if (!info[1].IsNull() && !info[1].IsUndefined()) prev = Bytes(info[1], "key");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, ks);
  if (bpf_map_get_next_key(fd, prev.empty() ? nullptr : prev.data(), out.Data())) {
    if (errno == ENOENT) return env.Null();
    Throw(env, "bpf_map_get_next_key", errno);
  }
  return out;
}

// mapCreate(type, name, keySize, valueSize, maxEntries, mapFlags) -> fd
Napi::Value MapCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int type = Int(info[0], "type");
  std::string name = info[1].As<Napi::String>();
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = U32(info[5], "map flags"));
  int fd = bpf_map_create((enum bpf_map_type)type, name.c_str(), U32(info[2], "key size"),
                          U32(info[3], "value size"), U32(info[4], "max entries"), &opts);
  if (fd < 0) Throw(env, "bpf_map_create " + name, errno);
  return Napi::Number::New(env, fd);
}

Napi::Value MapFdById(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = bpf_map_get_fd_by_id(U32(info[0], "id"));
  if (fd < 0) Throw(env, "bpf_map_get_fd_by_id", errno);
  return Napi::Number::New(env, fd);
}

Napi::Value ObjInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info[0], "fd");
  struct bpf_map_info mi = {};
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len)) Throw(env, "bpf_obj_get_info_by_fd", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("type", mi.type);
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  o.Set("mapFlags", mi.map_flags);
  o.Set("name", std::string(mi.name));
  return o;
}

Napi::Value ObjPin(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[1].As<Napi::String>();
  if (bpf_obj_pin(Int(info[0], "fd"), path.c_str())) Throw(env, "bpf_obj_pin " + path, errno);
  return env.Undefined();
}

Napi::Value ObjGet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) Throw(env, "bpf_obj_get " + path, errno);
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  close(Int(info[0], "fd"));
  return info.Env().Undefined();
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo &info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) Throw(info.Env(), "libbpf_num_possible_cpus", n);
  return Napi::Number::New(info.Env(), n);
}

// --------------------------------------------------------------------- tc

enum bpf_tc_attach_point Point(const Napi::Value &v) {
  std::string s = v.As<Napi::String>();
  if (s == "ingress") return BPF_TC_INGRESS;
  if (s == "egress") return BPF_TC_EGRESS;
  throw Napi::TypeError::New(v.Env(), "attach point must be \"ingress\" or \"egress\"");
}

// tcHookCreate(ifindex): the clsact qdisc; an existing one is fine.
Napi::Value TcHookCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = Int(info[0], "ifindex"), .attach_point = BPF_TC_INGRESS);
  g_log.clear();
  int r = bpf_tc_hook_create(&hook);
  if (r && r != -EEXIST) Throw(env, "bpf_tc_hook_create", r);
  return env.Undefined();
}

// tcHookDestroy(ifindex): removes the clsact qdisc and every filter on it.
Napi::Value TcHookDestroy(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = Int(info[0], "ifindex"),
              .attach_point = (enum bpf_tc_attach_point)(BPF_TC_INGRESS | BPF_TC_EGRESS));
  int r = bpf_tc_hook_destroy(&hook);
  if (r && r != -ENOENT && r != -EINVAL) Throw(env, "bpf_tc_hook_destroy", r);
  return env.Undefined();
}

// tcAttach(ifindex, point, progFd, handle, priority, replace) -> {handle, priority, progId}
Napi::Value TcAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = Int(info[0], "ifindex"), .attach_point = Point(info[1]));
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = Int(info[2], "prog fd"), .flags = 0u,
              .handle = U32(info[3], "handle"), .priority = U32(info[4], "priority"));
  if (info[5].ToBoolean()) opts.flags = BPF_TC_F_REPLACE;
  g_log.clear();
  int r = bpf_tc_attach(&hook, &opts);
  if (r) Throw(env, "bpf_tc_attach", r);
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", opts.handle);
  o.Set("priority", opts.priority);
  o.Set("progId", opts.prog_id);
  return o;
}

Napi::Value TcDetach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = Int(info[0], "ifindex"), .attach_point = Point(info[1]));
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = U32(info[2], "handle"), .priority = U32(info[3], "priority"));
  int r = bpf_tc_detach(&hook, &opts);
  if (r == -ENOENT) return Napi::Boolean::New(env, false);
  if (r) Throw(env, "bpf_tc_detach", r);
  return Napi::Boolean::New(env, true);
}

// tcQuery(ifindex, point, handle, priority) -> progId | null
Napi::Value TcQuery(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = Int(info[0], "ifindex"), .attach_point = Point(info[1]));
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = U32(info[2], "handle"), .priority = U32(info[3], "priority"));
  int r = bpf_tc_query(&hook, &opts);
  if (r == -ENOENT || r == -EINVAL) return env.Null();
  if (r) Throw(env, "bpf_tc_query", r);
  return Napi::Number::New(env, opts.prog_id);
}

// -------------------------------------------------------------------- tcx
//
// tcx links (kernel >= 6.6): BPF programs attached to a device's ingress or
// egress through a bpf_link instead of a clsact qdisc + cls_bpf filter, so
// the packet path skips tcf_classify/cls_bpf. Debian 12's uapi headers
// (linux-libc-dev 6.1) and libbpf 1.1 predate tcx, so the constants and the
// attr layouts below are copied from the kernel's include/uapi/linux/bpf.h
// (v6.6+: enum bpf_attach_type, union bpf_attr link_create.tcx and query,
// struct bpf_link_info.tcx) and the calls go through the raw bpf(2) syscall.

constexpr uint32_t kBpfTcxIngress = 46;  // BPF_TCX_INGRESS
constexpr uint32_t kBpfTcxEgress = 47;   // BPF_TCX_EGRESS
constexpr uint32_t kBpfLinkTypeTcx = 11; // BPF_LINK_TYPE_TCX

// union bpf_attr, BPF_LINK_CREATE with the tcx member (offsets 0..31).
struct TcxLinkCreateAttr {
  uint32_t prog_fd;
  uint32_t target_ifindex;
  uint32_t attach_type;
  uint32_t flags;            // 0: append after the device's other tcx programs
  uint32_t relative_fd;      // tcx.relative_fd / relative_id (unused: 0)
  uint32_t pad;
  uint64_t expected_revision; // 0 = any
};
static_assert(sizeof(TcxLinkCreateAttr) == 32, "link_create tcx attr layout");

// union bpf_attr, BPF_PROG_QUERY as of v6.6 (offsets 0..63).
struct TcxQueryAttr {
  uint32_t target_ifindex;
  uint32_t attach_type;
  uint32_t query_flags;
  uint32_t attach_flags;
  uint64_t prog_ids;
  uint32_t count;
  uint32_t pad;
  uint64_t prog_attach_flags;
  uint64_t link_ids;
  uint64_t link_attach_flags;
  uint64_t revision;
};
static_assert(sizeof(TcxQueryAttr) == 64, "prog_query attr layout");

// struct bpf_link_info: type, id, prog_id, then the union (8-aligned) whose
// tcx member is { ifindex, attach_type }.
struct TcxLinkInfo {
  uint32_t type;
  uint32_t id;
  uint32_t prog_id;
  uint32_t pad;
  uint32_t tcx_ifindex;
  uint32_t tcx_attach_type;
  uint8_t rest[232];  // the kernel's other union members; zero on input
};

long SysBpf(int cmd, void *attr, unsigned int size) { return syscall(__NR_bpf, cmd, attr, size); }

uint32_t TcxPoint(const Napi::Value &v) {
  std::string s = v.IsString() ? std::string(v.As<Napi::String>()) : std::string();
  if (s == "ingress") return kBpfTcxIngress;
  if (s == "egress") return kBpfTcxEgress;
  throw Napi::TypeError::New(v.Env(), "attach point must be \"ingress\" or \"egress\"");
}

// tcxAttach(ifindex, point, progFd) -> link fd
Napi::Value TcxAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  TcxLinkCreateAttr attr = {};
  attr.prog_fd = U32(info[2], "prog fd");
  attr.target_ifindex = U32(info[0], "ifindex");
  attr.attach_type = TcxPoint(info[1]);
  g_log.clear();
  long fd = SysBpf(BPF_LINK_CREATE, &attr, sizeof(attr));
  if (fd < 0) Throw(env, "bpf(BPF_LINK_CREATE, tcx)", errno);
  return Napi::Number::New(env, (double)fd);
}

// tcxQuery(ifindex, point) -> {progIds, linkIds, revision}; throws EINVAL
// where the kernel has no tcx (unknown attach type).
Napi::Value TcxQuery(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t progs[64] = {}, links[64] = {};
  TcxQueryAttr attr = {};
  attr.target_ifindex = U32(info[0], "ifindex");
  attr.attach_type = TcxPoint(info[1]);
  attr.prog_ids = (uint64_t)(uintptr_t)progs;
  attr.link_ids = (uint64_t)(uintptr_t)links;
  attr.count = 64;
  if (SysBpf(BPF_PROG_QUERY, &attr, sizeof(attr)) < 0) Throw(env, "bpf(BPF_PROG_QUERY, tcx)", errno);
  uint32_t n = attr.count < 64 ? attr.count : 64;
  Napi::Array p = Napi::Array::New(env, n), l = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    p.Set(i, progs[i]);
    l.Set(i, links[i]);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("progIds", p);
  o.Set("linkIds", l);
  o.Set("revision", Napi::Number::New(env, (double)attr.revision));
  return o;
}

// linkInfo(fd) -> {type, id, progId, ifindex, attachType} (the last two for
// tcx links; ifindex 0 = the device is gone and the link is defunct).
Napi::Value LinkInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  TcxLinkInfo li = {};
  uint32_t len = sizeof(li);
  if (bpf_obj_get_info_by_fd(Int(info[0], "link fd"), &li, &len)) Throw(env, "bpf_obj_get_info_by_fd (link)", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", li.type);
  o.Set("id", li.id);
  o.Set("progId", li.prog_id);
  bool tcx = li.type == kBpfLinkTypeTcx;
  o.Set("ifindex", tcx ? li.tcx_ifindex : 0);
  o.Set("attachType", tcx ? li.tcx_attach_type : 0);
  o.Set("isTcx", Napi::Boolean::New(env, tcx));
  return o;
}

// linkUpdate(linkFd, newProgFd): BPF_LINK_UPDATE, the atomic program swap.
Napi::Value LinkUpdate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (bpf_link_update(Int(info[0], "link fd"), Int(info[1], "prog fd"), nullptr))
    Throw(env, "bpf_link_update", errno);
  return env.Undefined();
}

// linkDetach(linkFd): BPF_LINK_DETACH, detaches even while other fds or pins
// hold the link (they then hold a defunct link).
Napi::Value LinkDetach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (bpf_link_detach(Int(info[0], "link fd"))) Throw(env, "bpf_link_detach", errno);
  return env.Undefined();
}

Napi::Value ProgIdOf(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct bpf_prog_info pi = {};
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(Int(info[0], "prog fd"), &pi, &len)) Throw(env, "bpf_obj_get_info_by_fd (prog)", errno);
  return Napi::Number::New(env, pi.id);
}

// --------------------------------------------------------------- test run

// progTestRun(progFd, dataIn, ctxIn | null, dataOutSize, repeat)
//   -> {retval, data, durationNs}
Napi::Value ProgTestRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info[0], "prog fd");
  auto data = Bytes(info[1], "data");
  std::vector<uint8_t> ctx;
  if (!info[2].IsNull() && !info[2].IsUndefined()) ctx = Bytes(info[2], "ctx");
  uint32_t out_size = U32(info[3], "data out size");
  std::vector<uint8_t> out(out_size > 0 ? out_size : 1);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_out = out.data(),
              .data_size_in = (uint32_t)data.size(), .data_size_out = out_size,
              .ctx_in = ctx.empty() ? nullptr : ctx.data(), .ctx_size_in = (uint32_t)ctx.size(),
              .repeat = (int)(info[4].IsNumber() ? U32(info[4], "repeat") : 1));
  if (bpf_prog_test_run_opts(fd, &opts)) Throw(env, "bpf_prog_test_run_opts", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("retval", opts.retval);
  o.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), std::min(opts.data_size_out, out_size)));
  o.Set("durationNs", opts.duration);
  return o;
}

// --------------------------------------------------------------- ringbuf

// new RingBuffer(mapFd, callback(events: Buffer[])). The epoll fd of the
// ring buffer is watched by a uv_poll handle on the main loop; when it is
// readable the samples are consumed and handed to the callback in one batch.
class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RingBuffer",
                       {InstanceMethod("close", &RingBuffer::Close), InstanceMethod("unref", &RingBuffer::Unref),
                        InstanceMethod("ref", &RingBuffer::Ref), InstanceMethod("drain", &RingBuffer::Drain)});
  }

  RingBuffer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<RingBuffer>(info) {
    Napi::Env env = info.Env();
    int fd = Int(info[0], "map fd");
    if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    cb_ = Napi::Persistent(info[1].As<Napi::Function>());
    rb_ = ring_buffer__new(fd, &RingBuffer::OnSample, this, nullptr);
    if (!rb_) Throw(env, "ring_buffer__new", errno);
    uv_loop_t *loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = this;
    int r = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
    if (r) {
      delete poll_;
      poll_ = nullptr;
      ring_buffer__free(rb_);
      rb_ = nullptr;
      Throw(env, "uv_poll_init", -r);
    }
    uv_poll_start(poll_, UV_READABLE, &RingBuffer::OnReadable);
    env_ = env;
    Ref();  // keep the JS object alive while polling
    alive_ = true;
  }

  ~RingBuffer() override { Stop(); }

 private:
  static int OnSample(void *ctx, void *data, size_t size) {
    auto *self = static_cast<RingBuffer *>(ctx);
    auto *p = static_cast<uint8_t *>(data);
    self->pending_.emplace_back(p, p + size);
    return 0;
  }

  static void OnReadable(uv_poll_t *h, int status, int events) {
    auto *self = static_cast<RingBuffer *>(h->data);
    if (!self || !self->rb_) return;
    self->Deliver();
  }

  void Deliver() {
    pending_.clear();
    ring_buffer__consume(rb_);
    if (pending_.empty()) return;
    Napi::HandleScope scope(env_);
    Napi::Array arr = Napi::Array::New(env_, pending_.size());
    for (size_t i = 0; i < pending_.size(); i++)
      arr.Set(i, Napi::Buffer<uint8_t>::Copy(env_, pending_[i].data(), pending_[i].size()));
    pending_.clear();
    cb_.MakeCallback(env_.Global(), {arr});
  }

  void Stop() {
    if (poll_) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t *>(poll_), [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
      poll_ = nullptr;
    }
    if (rb_) ring_buffer__free(rb_);
    rb_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Stop();
    if (alive_) {
      alive_ = false;
      Unref();
    }
    return info.Env().Undefined();
  }

  // Consume what is there now (synchronously), e.g. before reading counters.
  Napi::Value Drain(const Napi::CallbackInfo &info) {
    if (rb_) Deliver();
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo &info) {
    if (poll_) uv_unref(reinterpret_cast<uv_handle_t *>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo &info) {
    if (poll_) uv_ref(reinterpret_cast<uv_handle_t *>(poll_));
    return info.Env().Undefined();
  }

  using Napi::ObjectWrap<RingBuffer>::Ref;
  using Napi::ObjectWrap<RingBuffer>::Unref;

  Napi::Env env_ = Napi::Env(nullptr);
  Napi::FunctionReference cb_;
  struct ring_buffer *rb_ = nullptr;
  uv_poll_t *poll_ = nullptr;
  std::vector<std::vector<uint8_t>> pending_;
  bool alive_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CaptureLog);
  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("RingBuffer", RingBuffer::Init(env));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey));
  exports.Set("mapCreate", Napi::Function::New(env, MapCreate));
  exports.Set("mapFdById", Napi::Function::New(env, MapFdById));
  exports.Set("objInfo", Napi::Function::New(env, ObjInfo));
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("tcHookCreate", Napi::Function::New(env, TcHookCreate));
  exports.Set("tcHookDestroy", Napi::Function::New(env, TcHookDestroy));
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery));
  exports.Set("tcxAttach", Napi::Function::New(env, TcxAttach));
  exports.Set("tcxQuery", Napi::Function::New(env, TcxQuery));
  exports.Set("linkInfo", Napi::Function::New(env, LinkInfo));
  exports.Set("linkUpdate", Napi::Function::New(env, LinkUpdate));
  exports.Set("linkDetach", Napi::Function::New(env, LinkDetach));
  exports.Set("progIdOf", Napi::Function::New(env, ProgIdOf));
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun));
  return exports;
}

}  // namespace

NODE_API_MODULE(palisade_bpf, Init)
