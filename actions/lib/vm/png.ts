import zlib from 'node:zlib';

/** QEMU's screendump writes binary PPM (P6); this turns it into a PNG without extra tools. */
export function ppmToPng(ppm: Buffer): Buffer {
  let off = 0;
  const tokens: string[] = [];
  while (tokens.length < 4) {
    while (off < ppm.length && /\s/.test(String.fromCharCode(ppm[off]!))) off++;
    if (ppm[off] === 0x23) {
      while (off < ppm.length && ppm[off] !== 0x0a) off++;
      continue;
    }
    let t = '';
    while (off < ppm.length && !/\s/.test(String.fromCharCode(ppm[off]!))) t += String.fromCharCode(ppm[off++]!);
    tokens.push(t);
  }
  off++; // the single whitespace after maxval
  const [magic, w, h, max] = tokens;
  const width = Number(w);
  const height = Number(h);
  if (magic !== 'P6' || !(width > 0) || !(height > 0) || Number(max) !== 255)
    throw new Error('not an 8-bit binary PPM');
  const row = width * 3;
  if (ppm.length - off < row * height) throw new Error('truncated PPM');
  const raw = Buffer.alloc((row + 1) * height);
  for (let y = 0; y < height; y++) ppm.copy(raw, y * (row + 1) + 1, off + y * row, off + (y + 1) * row);
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
