"""Finds a local CUDA toolkit when the workspace is configured.

Creates @local_cuda with:
  - defs.bzl: CUDA_ENABLED (bool), CUDA_PATH and NVCC (strings, empty
    without CUDA);
  - :cudart: the shared CUDA runtime (libcudart.so.N) and headers (empty
    when CUDA is absent). Shared, not static: every binary linking the
    static runtime carried 670 KiB of it, 8 MiB over the GPU kit's 13
    binaries, which must fit 64 MiB in all.
A toolkit counts only with headers, the shared runtime and nvcc. Search order: $CUDA_HOME, $CUDA_PATH, the directory above `nvcc` on PATH,
/usr/local/cuda. Set KVCACHE_NO_CUDA=1 to build without CUDA on purpose.
Nothing is downloaded.
"""

def _find_cuda(ctx):
    if ctx.os.environ.get("KVCACHE_NO_CUDA", "") == "1":
        return None
    candidates = []
    for var in ["CUDA_HOME", "CUDA_PATH"]:
        value = ctx.os.environ.get(var, "")
        if value:
            candidates.append(value)
    nvcc = ctx.which("nvcc")
    if nvcc:
        candidates.append(str(nvcc.dirname.dirname))
    candidates.append("/usr/local/cuda")
    for path in candidates:
        root = ctx.path(path)
        if (root.get_child("include").get_child("cuda_runtime_api.h").exists and
            _cudart_soname(root) != None and
            root.get_child("bin").get_child("nvcc").exists):
            return root
    return None

def _cudart_soname(root):
    """The runtime's versioned name (libcudart.so.13), or None."""
    for child in root.get_child("lib64").readdir():
        name = child.basename
        if name.startswith("libcudart.so.") and name[len("libcudart.so."):].isdigit():
            return name
    return None

def _cuda_configure_impl(ctx):
    root = _find_cuda(ctx)
    if root == None:
        ctx.file("defs.bzl", "CUDA_ENABLED = False\nCUDA_PATH = \"\"\nNVCC = \"\"\n")
        ctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])
cc_library(name = "cudart")
""")
        return
    ctx.symlink(root.get_child("include"), "include")
    soname = _cudart_soname(root)
    ctx.symlink(root.get_child("lib64").get_child(soname), "lib/" + soname)
    nvcc = root.get_child("bin").get_child("nvcc")
    ctx.file("defs.bzl", "CUDA_ENABLED = True\nCUDA_PATH = \"%s\"\nNVCC = \"%s\"\n" % (root, nvcc))
    ctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])
cc_library(
    name = "cudart",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp"]),
    includes = ["include"],
    srcs = ["lib/%s"],
    defines = ["KVCACHE_HAVE_CUDA=1"],
)
""" % soname)

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_HOME", "CUDA_PATH", "PATH", "KVCACHE_NO_CUDA"],
    local = True,
)
