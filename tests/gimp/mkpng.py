#!/usr/bin/env python3
"""tests/gimp/mkpng.py: writes a textured test PNG (no dependencies): mkpng.py OUT W H CHANNELS(1-4) BITS(8|16) [edges].

Colours are smooth waves with some detail; alpha (2 or 4 channels) runs from 0.2 to 1 across the image. With
"edges", hard-edged shapes (a disc, bars) lie on top: what JPEG compression surrounds with ringing and blocks."""
import math, struct, sys, zlib

def sample(x, y, w, h, c, channels, edges=False):
    if channels in (2, 4) and c == channels - 1:
        return 0.2 + 0.8 * x / max(1, w - 1)
    if edges and (x - 0.6 * w) ** 2 + (y - 0.5 * h) ** 2 < (0.25 * h) ** 2:
        return (0.9, 0.2, 0.1)[c % 3]
    if edges and (x // 6) % 3 == 0 and y < 0.4 * h:
        return (0.05, 0.1, 0.3)[c % 3]
    k = (0.31, 0.17, 0.23)[c % 3]
    v = 0.5 + 0.35 * math.sin(k * x + 0.11 * (c + 1) * y) + 0.15 * math.cos(0.05 * x * y / (c + 2))
    return min(1.0, max(0.0, v))

def main():
    out, w, h, channels, bits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    edges = sys.argv[6:7] == ['edges']
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    maxv = (1 << bits) - 1
    raw = bytearray()
    for y in range(h):
        raw.append(0)
        for x in range(w):
            for c in range(channels):
                v = int(round(sample(x, y, w, h, c, channels, edges) * maxv))
                raw += struct.pack('>H', v) if bits == 16 else bytes([v])
    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)
    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, bits, color_type, 0, 0, 0))
    png += chunk(b'IDAT', zlib.compress(bytes(raw), 9)) + chunk(b'IEND', b'')
    with open(out, 'wb') as f:
        f.write(png)

main()
