# The native addon: a C11 engine (native/core, no Node, no syscalls), I/O backends
# (native/io), worker loops (native/worker) and node-addon-api glue (native/addon).
# Optional backends are switched on by scripts/build-native.mjs after pkg-config.
{
  "variables": {
    "have_afxdp%": 0,
    "have_dpdk%": 0
  },
  "targets": [
    {
      "target_name": "vfplane_native",
      "sources": [
        "native/core/csum.c",
        "native/core/flowhash.c",
        "native/core/vxlan.c",
        "native/core/fdb.c",
        "native/core/icmp.c",
        "native/io/memory.c",
        "native/io/afpacket.c",
        "native/worker/bench.c",
        "native/net/netops.c",
        "native/worker/dp.c",
        "native/addon/addon.cc",
        "native/addon/dp.cc",
        "native/addon/proc.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: a throw in an env being torn down (a worker
      # thread terminated while a port's open completes) is dropped, not a fatal error.
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "_GNU_SOURCE", "VFP_HAVE_AFPACKET=1"],
      "libraries": ["-lpthread"],
      # -fvisibility=hidden: only the N-API entry point leaves the addon, so calls between
      # its files (the packet path's vfp_fdb__vtep, vfp_vni_set__contains…) are direct
      # rather than through the PLT, as a symbol another object could interpose needs.
      # bench dataplane --ops decap: ~1–1.5 ns a frame (6%) less.
      "cflags": ["-O3", "-fno-strict-aliasing", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "cflags_c": ["-std=c11"],
      "cflags_cc": ["-std=c++17"],
      "cflags_cc!": ["-std=gnu++17"],
      "conditions": [
        ["have_afxdp==1", {
          "defines": ["VFP_HAVE_AFXDP=1"],
          "sources": ["native/io/afxdp.c"],
          "libraries": ["<!@(pkg-config --libs libxdp libbpf)"]
        }],
        ["have_dpdk==1", {
          # Include paths only: DPDK's -march=corei7 is set inside dpdk.c by a pragma,
          # so the rest of the addon keeps its own baseline.
          "sources": ["native/io/dpdk.c"],
          "defines": ["VFP_HAVE_DPDK=1"],
          "cflags": ["<!@(pkg-config --cflags-only-I libdpdk)"],
          "libraries": ["<!@(pkg-config --libs libdpdk)"]
        }]
      ]
    },
    {
      # vfplane-cni's front door: forwards a CNI call to `vfplane cni serve`, or execs
      # the Node plugin when no server runs (native/cni-shim/shim.c). Plain C, no Node.
      "target_name": "vfplane-cni-shim",
      "type": "executable",
      "sources": ["native/cni-shim/shim.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      # Static: a runtime execs it for every pod interface, and a static binary starts
      # without the dynamic loader (~0.5 ms less here).
      "ldflags": ["-static"],
      "cflags_c": ["-std=c11"]
    },
    {
      # vfp-io-fwd: a two-port L2 forwarder over any backend, for tests (native/test).
      # Each backend adds its sources and adapter here under its have_* condition.
      "target_name": "vfp-io-fwd",
      "type": "executable",
      "sources": ["native/test/io_fwd.c", "native/io/memory.c", "native/core/csum.c",
                  "native/io/afpacket.c", "native/test/io_fwd_afpacket.c"],
      "include_dirs": ["native"],
      "defines": ["_GNU_SOURCE", "VFP_HAVE_AFPACKET=1"],
      "libraries": ["-lpthread"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=c11"],
      "conditions": [
        ["have_afxdp==1", {
          "defines": ["VFP_HAVE_AFXDP=1"],
          "sources": ["native/io/afxdp.c", "native/test/io_fwd_afxdp.c"],
          "libraries": ["<!@(pkg-config --libs libxdp libbpf)", "-lpthread"]
        }],
        ["have_dpdk==1", {
          "sources": ["native/io/dpdk.c", "native/test/io_fwd_dpdk.c"],
          "defines": ["VFP_HAVE_DPDK=1"],
          "cflags": ["<!@(pkg-config --cflags-only-I libdpdk)"],
          "libraries": ["<!@(pkg-config --libs libdpdk)"]
        }]
      ]
    },
    {
      # vfp-core-guard: the engine on frames that end at an inaccessible page, so a read
      # past a frame faults (native/test/guard.c; test/native/guard.test.ts).
      "target_name": "vfp-core-guard",
      "type": "executable",
      "sources": ["native/test/guard.c", "native/core/csum.c", "native/core/flowhash.c",
                  "native/core/vxlan.c", "native/core/fdb.c"],
      "include_dirs": ["native"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=c11"]
    },
    {
      # vfp-core-sweep and its general twin (the fast paths compiled out): the engine over
      # a sweep of edge cases; the two outputs must be identical (native/test/sweep.c).
      "target_name": "vfp-core-sweep",
      "type": "executable",
      "sources": ["native/test/sweep.c", "native/core/csum.c", "native/core/flowhash.c",
                  "native/core/vxlan.c", "native/core/fdb.c"],
      "include_dirs": ["native"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=c11"]
    },
    {
      "target_name": "vfp-core-sweep-general",
      "type": "executable",
      "sources": ["native/test/sweep.c", "native/core/csum.c", "native/core/flowhash.c",
                  "native/core/vxlan.c", "native/core/fdb.c"],
      "include_dirs": ["native"],
      "defines": ["_GNU_SOURCE", "VFP_NO_FAST_PATHS"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=c11"]
    },
    {
      # vfp-pktgen: the I/O benchmark's generator (AF_PACKET/AF_XDP tx of a fixed frame
      # set) and sink (an XDP program that counts and drops), native/tools/vfp_pktgen.c.
      "target_name": "vfp-pktgen",
      "type": "executable",
      "sources": ["native/tools/vfp_pktgen.c", "native/core/csum.c", "native/io/memory.c", "native/io/afpacket.c"],
      "include_dirs": ["native"],
      "defines": ["_GNU_SOURCE", "VFP_HAVE_AFPACKET=1"],
      "libraries": ["-lpthread"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=c11"],
      "conditions": [
        ["have_afxdp==1", {
          "defines": ["VFP_HAVE_AFXDP=1"],
          "sources": ["native/io/afxdp.c"],
          "libraries": ["<!@(pkg-config --libs libxdp libbpf)", "-lpthread"]
        }]
      ]
    }
  ]
}
