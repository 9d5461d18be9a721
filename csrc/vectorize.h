// TORCHFLIP_VECTORIZE marks the few hand-written CPU loops whose speed is the
// whole point of their kernel. The build compiles at -O2, where GCC only
// vectorizes loops that need no remainder handling; these ask for -O3's
// vectorizer, and on x86-64 for an AVX2/FMA clone chosen at load time. Other
// compilers build them as plain loops.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TORCHFLIP_VECTORIZE \
  __attribute__((target_clones("arch=haswell", "default"), optimize("O3")))
#elif defined(__GNUC__) && !defined(__clang__)
#define TORCHFLIP_VECTORIZE __attribute__((optimize("O3")))
#else
#define TORCHFLIP_VECTORIZE
#endif
