//! Test-only helpers: a tiny seeded PRNG (so tests are reproducible without a `rand`
//! dependency) and random-input generators biased towards the bytes Braid parsers care about.
//! Not compiled outside `cfg(test)`.

/// SplitMix64: small, fast, deterministic; good enough to generate test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Random bytes drawn mostly from an alphabet of grammar-relevant characters, so that
    /// random inputs reach deep into the parsers instead of failing on the first byte.
    pub fn grammar_bytes(&mut self, max_len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"\r\n:;[]-\"\\, =0123456789abtexHTPcontent-lgrha/\t\xff\xc3\xa9";
        const WORDS: &[&[u8]] = &[
            b"text ",
            b"Content-Length: ",
            b"Content-Range: ",
            b"Patches: ",
            b"HTTP 200 OK\r\n",
            b"\r\n\r\n",
            b"count=",
            b"application/http-patches",
            b"\"a-1\"",
            b"\\u00e9",
            b"\xf0\x9f\x98\x80",
            b"99999999999999999999",
        ];
        let len = self.below(max_len + 1);
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match self.below(10) {
                0 => out.push(self.next_u64() as u8),
                1 => {
                    let word: &[u8] = WORDS[self.below(WORDS.len())];
                    out.extend_from_slice(word);
                }
                _ => out.push(*self.pick(ALPHABET)),
            }
        }
        out
    }

    /// A random Unicode string: ASCII, Latin-1, CJK, emoji, controls, quotes and backslashes.
    pub fn text(&mut self, max_chars: usize) -> String {
        const CHARS: &[char] = &[
            'a',
            'b',
            'z',
            ' ',
            '-',
            '"',
            '\\',
            '\r',
            '\n',
            '\t',
            '\u{0}',
            '\u{7f}',
            'é',
            'ß',
            '中',
            '\u{2028}',
            '😀',
            '🧵',
            '\u{ffff}',
            '\u{10ffff}',
        ];
        let n = self.below(max_chars + 1);
        (0..n).map(|_| *self.pick(CHARS)).collect()
    }
}

/// Runs `parse` on `rounds` random inputs; the test fails if any call panics.
pub fn never_panics<T>(seed: u64, rounds: usize, max_len: usize, mut parse: impl FnMut(&[u8]) -> T) {
    let mut rng = Rng::new(seed);
    for _ in 0..rounds {
        let input = rng.grammar_bytes(max_len);
        let _ = parse(&input);
    }
}
