"""Builds openmla's C++ library with CMake (from the repository root) and the
thin PyTorch extension ``openmla._C`` over it, and installs the Python
packages ``openmla`` and ``flash_mla``.

    pip install --no-build-isolation ./python      # from the repository root

It compiles against the PyTorch already installed (hence no build isolation)
and needs nvcc (CUDA 13), CMake >= 3.24 and a C++ compiler; ninja is used
when present. Nothing is downloaded.

Environment:
    OPENMLA_PREBUILT_LIB   path of an already built libopenmla.a (PIC) to link
                           instead of running CMake (e.g. build/libopenmla.a)
    OPENMLA_CMAKE_BUILD_DIR  CMake build folder (default: under build/)
    OPENMLA_CMAKE_ARGS     extra CMake configure arguments
    MAX_JOBS               parallel compile jobs (default: CPU count)
"""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

try:
    import torch  # noqa: F401
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension
except ImportError as e:  # pragma: no cover
    raise RuntimeError(
        "openmla's Python package compiles against the installed PyTorch: install torch first and "
        "run `pip install --no-build-isolation ./python`") from e


def _log(msg):
    print(f"[openmla] {msg}", file=sys.stderr, flush=True)


def _run(cmd, **kw):
    _log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def build_openmla_static(build_temp: Path) -> Path:
    """Configures and builds the CMake target `openmla`; returns libopenmla.a."""
    prebuilt = os.environ.get("OPENMLA_PREBUILT_LIB")
    if prebuilt:
        lib = Path(prebuilt).resolve()
        if not lib.is_file():
            raise RuntimeError(f"OPENMLA_PREBUILT_LIB={prebuilt} is not a file")
        _log(f"linking the prebuilt {lib}")
        return lib

    if not (ROOT / "CMakeLists.txt").is_file():
        raise RuntimeError(f"openmla's CMakeLists.txt not found in {ROOT}; build from a checkout")
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake (>= 3.24) is needed to build openmla's C++ library")
    build_dir = Path(os.environ.get("OPENMLA_CMAKE_BUILD_DIR") or build_temp / "openmla-cmake")
    build_dir = build_dir.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)

    args = [cmake, "-S", ROOT, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DOPENMLA_BUILD_TESTS=OFF",
            "-DOPENMLA_BUILD_TOOLS=OFF",
            "-DCMAKE_POSITION_INDEPENDENT_CODE=ON"]
    if not (build_dir / "CMakeCache.txt").exists() and shutil.which("ninja"):
        args += ["-G", "Ninja"]
    if "CUDACXX" not in os.environ and CUDA_HOME:
        nvcc = Path(CUDA_HOME) / "bin" / "nvcc"
        if nvcc.is_file():
            args.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    args += shlex.split(os.environ.get("OPENMLA_CMAKE_ARGS", ""))
    _run(args)
    jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 4)
    _run([cmake, "--build", build_dir, "--target", "openmla", "--parallel", jobs])

    lib = build_dir / "libopenmla.a"
    if not lib.is_file():
        found = sorted(build_dir.rglob("libopenmla.a"))
        if not found:
            raise RuntimeError(f"CMake built no libopenmla.a under {build_dir}")
        lib = found[0]
    return lib


class BuildWithCMake(BuildExtension):
    def build_extensions(self):
        lib = build_openmla_static(Path(self.build_temp))
        for ext in self.extensions:
            ext.extra_objects = [str(lib)] + list(ext.extra_objects or [])
            ext.depends = list(ext.depends or []) + [str(lib)]
        super().build_extensions()


ext = CUDAExtension(
    name="openmla._C",
    sources=["csrc/openmla_torch.cpp"],
    include_dirs=[str(ROOT / "include"), str(ROOT / "src")],
    extra_compile_args={"cxx": ["-O2"]},
    # The static library's symbols stay inside the extension.
    extra_link_args=["-Wl,--exclude-libs,ALL"],
)

setup(
    name="openmla",
    version="0.1.0",
    description="MLA decoding kernels for Hopper with FlashMLA's PyTorch API",
    packages=["openmla", "flash_mla"],
    ext_modules=[ext],
    cmdclass={"build_ext": BuildWithCMake},
    python_requires=">=3.9",
    zip_safe=False,
)
