#!/usr/bin/env python3
"""Prints, one lowercase hex info_hash a line, the info hashes a benchmark load uses, so that
Debian's whitelist-only opentracker can be given a whitelist that admits exactly that load.

usage:
  hashes.py loadgen TORRENTS [SEED]     hashes of bench/loadgen (its `fn hash(seed, i)`), SEED 1
  hashes.py aquatic-udp TORRENTS        hashes of aquatic_udp_load_test 0.9.0
                                        (requests.number_of_torrents; default config: 1000000)

aquatic_udp_load_test draws its info hashes from rand 0.8's SmallRng (Xoshiro256++ on 64-bit)
seeded with SmallRng::seed_from_u64(0xc3aa8be617b3acce); SmallRng does not forward
seed_from_u64, so rand_core 0.6's default (PCG32 fills the 32-byte seed) applies. Each hash byte
is `rng.gen::<u8>()` = the low byte of next_u32() = bits 32..40 of next_u64().
"""
import sys

M64 = (1 << 64) - 1


def loadgen_hash(seed, i):
    x = (seed ^ ((i * 0x9E3779B97F4A7C15) & M64)) & M64
    out = bytearray()
    for _ in range(2):  # the third 8-byte round is overwritten by the index below
        x ^= x >> 33
        x = (x * 0xFF51AFD7ED558CCD) & M64
        x ^= x >> 33
        out += x.to_bytes(8, "little")
    out += i.to_bytes(4, "big")
    return bytes(out)


def pcg32_seed(state):
    mul, inc = 6364136223846793005, 11634580027462260723
    seed = bytearray()
    for _ in range(8):
        state = (state * mul + inc) & M64
        xorshifted = (((state >> 18) ^ state) >> 27) & 0xFFFFFFFF
        rot = state >> 59
        x = ((xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))) & 0xFFFFFFFF
        seed += x.to_bytes(4, "little")
    return [int.from_bytes(seed[k * 8:(k + 1) * 8], "little") for k in range(4)]


def aquatic_udp_hashes(n):
    s0, s1, s2, s3 = pcg32_seed(0xC3AA8BE617B3ACCE)
    for _ in range(n):
        h = bytearray(20)
        for b in range(20):
            # xoshiro256++ next_u64
            r = (s0 + s3) & M64
            r = (((r << 23) | (r >> 41)) + s0) & M64
            t = (s1 << 17) & M64
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = ((s3 << 45) | (s3 >> 19)) & M64
            h[b] = (r >> 32) & 0xFF
        yield bytes(h)


def main():
    a = sys.argv[1:]
    if len(a) < 2 or a[0] not in ("loadgen", "aquatic-udp"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    n = int(a[1])
    out = sys.stdout
    if a[0] == "loadgen":
        seed = int(a[2]) if len(a) > 2 else 1
        for i in range(n):
            out.write(loadgen_hash(seed, i).hex() + "\n")
    else:
        for h in aquatic_udp_hashes(n):
            out.write(h.hex() + "\n")


if __name__ == "__main__":
    main()
