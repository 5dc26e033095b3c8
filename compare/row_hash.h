#pragma once

// 64-bit hashing for result digests: fast (a value of a few bytes costs a few ns) and well mixed,
// not cryptographic — someone who controls both stores' data could make two rows collide.
// The construction follows wyhash (public domain): 64×64→128-bit multiplies folded by xor.
// Values are only ever compared within one process, so host byte order does not matter.

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cutover::compare::row_hash {

inline constexpr uint64_t kP0 = 0xa0761d6478bd642full;
inline constexpr uint64_t kP1 = 0xe7037ed1a0b428dbull;
inline constexpr uint64_t kP2 = 0x8ebc6af09c88c6e3ull;
inline constexpr uint64_t kP3 = 0x589965cc75374cc3ull;

inline uint64_t mum(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

inline uint64_t read64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// MurmurHash3's finaliser: a bijection, so a second accumulator of fmix(h) is independent of a
// plain sum of h in the way that matters (no linear relation between the two sums).
inline uint64_t fmix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

inline uint64_t bytes(const uint8_t* p, size_t n, uint64_t seed) {
  seed ^= kP0;
  uint64_t a = 0;
  uint64_t b = 0;
  if (n <= 16) {
    if (n >= 4) {
      const size_t shift = (n >> 3) << 2;
      a = (read32(p) << 32) | read32(p + shift);
      b = (read32(p + n - 4) << 32) | read32(p + n - 4 - shift);
    } else if (n > 0) {
      a = (uint64_t{p[0]} << 16) | (uint64_t{p[n >> 1]} << 8) | p[n - 1];
    }
  } else {
    size_t left = n;
    while (left > 16) {
      seed = mum(read64(p) ^ kP1, read64(p + 8) ^ seed);
      p += 16;
      left -= 16;
    }
    a = read64(p + left - 16);
    b = read64(p + left - 8);
  }
  return mum(kP1 ^ n, mum(a ^ kP1, b ^ seed));
}

inline uint64_t word(uint64_t value, uint64_t seed) { return mum(value ^ kP1, seed ^ kP0); }

}  // namespace cutover::compare::row_hash
