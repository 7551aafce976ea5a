"""cuda_library: .cu files compiled by the local nvcc into a cc_library.

Each .cu becomes one object through a genrule (nothing is downloaded; nvcc is
the one @local_cuda found). The objects link like any C++ code and bring the
static CUDA runtime with them. Only use this where CUDA_ENABLED is true.

The .cu files may include only the headers listed in `hdrs` and `cu_hdrs`
(our own, by workspace path) and CUDA's; they see no Bazel deps' headers,
which keeps device code free of Abseil and gRPC.

Device code is built for sm_80 (A100), sm_90 (H100/H200) and as compute_90
PTX, which newer GPUs JIT-compile at first load.
"""

load("@local_cuda//:defs.bzl", "NVCC")

_NVCC_FLAGS = " ".join([
    "-c",
    "-std=c++17",
    "-O3",
    "-Xcompiler=-fPIC,-Wall",
    "-gencode=arch=compute_80,code=sm_80",
    "-gencode=arch=compute_90,code=[sm_90,compute_90]",
    "-I.",
    "-I$(GENDIR)",
])

def cuda_library(name, srcs, hdrs = [], cu_hdrs = [], deps = [], **kwargs):
    """A cc_library whose srcs are .cu files compiled by nvcc.

    Args:
      name: the library.
      srcs: .cu files.
      hdrs: public headers (also visible to the .cu files).
      cu_hdrs: private headers the .cu files include.
      deps: cc deps of the library's users (not seen by nvcc).
      **kwargs: passed to cc_library (visibility, tags).
    """
    objects = []
    for src in srcs:
        if not src.endswith(".cu"):
            fail("cuda_library %s: %s is not a .cu file" % (name, src))
        obj = "_%s_objs/%s.o" % (name, src[:-len(".cu")])
        native.genrule(
            name = "%s_nvcc_%s" % (name, src[:-len(".cu")].replace("/", "_")),
            srcs = [src] + hdrs + cu_hdrs,
            outs = [obj],
            cmd = "%s %s -o $@ $(location %s)" % (NVCC, _NVCC_FLAGS, src),
            message = "nvcc %s" % src,
            visibility = ["//visibility:private"],
        )
        objects.append(obj)
    native.cc_library(
        name = name,
        srcs = objects,
        hdrs = hdrs,
        deps = deps + ["@local_cuda//:cudart"],
        **kwargs
    )
