// Transformations that summarise a value: t:md5 and t:sha1 (the raw digest bytes, as ModSecurity's md5.cc and
// sha1.cc return them; CRS follows t:sha1 with t:hexEncode) and t:length (the byte count in decimal).
import { hash } from 'node:crypto';
import type { Transform } from './types.ts';

// Digests come back as 'binary', Node's name for latin1: one char per byte, i.e. a byte string.
export const md5: Transform = (input) => hash('md5', Buffer.from(input, 'latin1'), 'binary');

export const sha1: Transform = (input) => hash('sha1', Buffer.from(input, 'latin1'), 'binary');

export const length: Transform = (input) => String(input.length);
