// TORCHFLIP_VECTORIZE marks the few hand-written CPU loops whose speed is the
// whole point of their kernel. The build compiles at -O2, where GCC only
// vectorizes loops that need no remainder handling; these ask for -O3's
// vectorizer, and on x86-64 for an AVX2 clone chosen at load time. Other
// compilers build them as plain loops.
//
// The clone is named by ISA level or feature, never by CPU model: GCC picks an
// "arch=haswell" clone only on a CPU it identifies as Haswell itself, so on
// every later Intel and every AMD CPU the SSE2 default ran instead.
// x86-64-v3 (AVX2, FMA) as a clone target needs GCC 12; older GCC gets AVX2.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    __GNUC__ >= 12
#define TORCHFLIP_VECTORIZE                                           \
  __attribute__((target_clones("arch=x86-64-v3", "default"),          \
                 optimize("O3")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TORCHFLIP_VECTORIZE \
  __attribute__((target_clones("avx2", "default"), optimize("O3")))
#elif defined(__GNUC__) && !defined(__clang__)
#define TORCHFLIP_VECTORIZE __attribute__((optimize("O3")))
#else
#define TORCHFLIP_VECTORIZE
#endif
