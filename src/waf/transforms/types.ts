// Every value the WAF inspects is a byte string: one UTF-16 code unit per byte, each below 256 (what Node
// already gives for header values and what `Buffer#latin1Slice` gives for bodies). Transformations and
// operators read and produce byte strings, so their results match ModSecurity's, which works on bytes.

/** A pure byte-string → byte-string function named by a `t:` action. */
export type Transform = (input: string) => string;
