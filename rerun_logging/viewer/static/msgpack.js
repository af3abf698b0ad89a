// A small msgpack decoder for the envelope of the feed's binary batches (feed.py:
// binary_batch): maps, arrays, text, numbers, nil, booleans and bytes (a Uint8Array
// view: the typed columns). The values the batch carries there are names, numbers
// and ids; integers past 2**53 - 1 come out as their decimal text, as the JSON batch
// made them. The log's own data (messages, extras, arguments) travels as JSON text
// inside the batch, parsed by JSON.parse. Anything else is a DecodeError.

const utf8 = new TextDecoder("utf-8");
const MAX_DEPTH = 16; // a batch nests 3 deep
const SHORT = 32;     // strings up to this many bytes are decoded by hand when ASCII

export class DecodeError extends Error {}

/** The one msgpack value in `u8` from `offset` to its end. */
export function decode(u8, offset = 0) {
  const reader = new Reader(u8, offset);
  const value = reader.value(0);
  if (reader.pos !== u8.length) throw new DecodeError("bytes after the value at " + reader.pos);
  return value;
}

function safe(big) {
  return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big.toString();
}

class Reader {
  constructor(u8, pos) {
    this.u8 = u8;
    this.view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    this.pos = pos;
  }

  /** Take `n` bytes; where they start. */
  take(n) {
    const at = this.pos;
    if (at + n > this.u8.length) throw new DecodeError("truncated at byte " + at);
    this.pos = at + n;
    return at;
  }

  value(depth) {
    const b = this.u8[this.take(1)];
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 256;
    if (b < 0x90) return this.map(b & 0x0f, depth);
    if (b < 0xa0) return this.array(b & 0x0f, depth);
    if (b < 0xc0) return this.str(b & 0x1f);
    const v = this.view;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(v.getUint8(this.take(1)));
      case 0xc5: return this.bin(v.getUint16(this.take(2)));
      case 0xc6: return this.bin(v.getUint32(this.take(4)));
      case 0xca: return v.getFloat32(this.take(4));
      case 0xcb: return v.getFloat64(this.take(8));
      case 0xcc: return v.getUint8(this.take(1));
      case 0xcd: return v.getUint16(this.take(2));
      case 0xce: return v.getUint32(this.take(4));
      case 0xcf: return safe(v.getBigUint64(this.take(8)));
      case 0xd0: return v.getInt8(this.take(1));
      case 0xd1: return v.getInt16(this.take(2));
      case 0xd2: return v.getInt32(this.take(4));
      case 0xd3: return safe(v.getBigInt64(this.take(8)));
      case 0xd9: return this.str(v.getUint8(this.take(1)));
      case 0xda: return this.str(v.getUint16(this.take(2)));
      case 0xdb: return this.str(v.getUint32(this.take(4)));
      case 0xdc: return this.array(v.getUint16(this.take(2)), depth);
      case 0xdd: return this.array(v.getUint32(this.take(4)), depth);
      case 0xde: return this.map(v.getUint16(this.take(2)), depth);
      case 0xdf: return this.map(v.getUint32(this.take(4)), depth);
      default: throw new DecodeError("type byte 0x" + b.toString(16) + " at " + (this.pos - 1) + " is not one a batch holds");
    }
  }

  str(n) {
    const u8 = this.u8, start = this.take(n), end = start + n;
    if (n <= SHORT) {
      let ascii = true;
      for (let i = start; i < end; i++) if (u8[i] >= 0x80) { ascii = false; break; }
      if (ascii) return String.fromCharCode.apply(null, u8.subarray(start, end));
    }
    return utf8.decode(u8.subarray(start, end));
  }

  bin(n) {
    const start = this.take(n);
    return this.u8.subarray(start, start + n);
  }

  array(n, depth) {
    if (depth >= MAX_DEPTH) throw new DecodeError("nested past " + MAX_DEPTH + " levels");
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  map(n, depth) {
    if (depth >= MAX_DEPTH) throw new DecodeError("nested past " + MAX_DEPTH + " levels");
    const out = Object.create(null);
    for (let i = 0; i < n; i++) {
      const key = this.value(depth + 1);
      out[String(key)] = this.value(depth + 1);
    }
    return out;
  }
}
