// Host build of the CUDA kernels (engines/*/kernels/*.cu), so that the kernel files themselves
// run on a CPU against the NumPy reference.
//
// The kernels use no shared memory, barriers, atomics or includes: each thread only reads its
// indices and global memory. Here the CUDA qualifiers expand to nothing, the thread indices are
// thread-local globals, the device math functions are the C library's (the *_rn intrinsics are
// the plain IEEE operations they name), and FS_HOST_KERNEL(k) exports, for the extern "C"
// kernel k:
//   fs_launch_k(grid, block, args)  runs every thread of the grid in turn, with `args` laid out
//                                   as for cuLaunchKernel (one pointer to each argument);
//   fs_signature_k()                 the parameter types ("const uint8*,int64,float32,..."), so
//                                   the caller can check each argument's type as the GPU would
//                                   silently reinterpret it.
#pragma once

#include <math.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct fs_dim3 {
    unsigned int x, y, z;
};

static thread_local fs_dim3 threadIdx, blockIdx, blockDim, gridDim;

static inline int max(int a, int b) { return a > b ? a : b; }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }

template <typename T> struct fs_param;
template <> struct fs_param<int> { static std::string name() { return "int32"; } };
template <> struct fs_param<long long> { static std::string name() { return "int64"; } };
template <> struct fs_param<float> { static std::string name() { return "float32"; } };
template <> struct fs_param<double> { static std::string name() { return "float64"; } };
template <> struct fs_param<unsigned char> { static std::string name() { return "uint8"; } };
template <typename T> struct fs_param<T*> {
    static std::string name() {
        return (std::is_const<T>::value ? "const " : "") + fs_param<typename std::remove_const<T>::type>::name() + "*";
    }
};

template <typename... A>
std::string fs_signature(void (*)(A...)) {
    std::string s;
    ((s += fs_param<A>::name() + ","), ...);
    if (!s.empty()) s.pop_back();
    return s;
}

template <typename... A, std::size_t... I>
inline void fs_call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<A*>(args[I])...);
}

template <typename... A>
inline __attribute__((always_inline)) void fs_launch(void (*kernel)(A...), const unsigned* grid,
                                                     const unsigned* block, void** args) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    for (unsigned bz = 0; bz < grid[2]; ++bz)
        for (unsigned by = 0; by < grid[1]; ++by)
            for (unsigned bx = 0; bx < grid[0]; ++bx) {
                blockIdx = {bx, by, bz};
                for (unsigned tz = 0; tz < block[2]; ++tz)
                    for (unsigned ty = 0; ty < block[1]; ++ty)
                        for (unsigned tx = 0; tx < block[0]; ++tx) {
                            threadIdx = {tx, ty, tz};
                            fs_call(kernel, args, std::index_sequence_for<A...>{});
                        }
            }
}

#define FS_HOST_KERNEL(k)                                                                      \
    extern "C" const char* fs_signature_##k() {                                                \
        static const std::string s = fs_signature(&k);                                         \
        return s.c_str();                                                                      \
    }                                                                                          \
    extern "C" void fs_launch_##k(const unsigned* grid, const unsigned* block, void** args) { \
        fs_launch(&k, grid, block, args);                                                      \
    }
