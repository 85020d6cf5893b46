//! CRC-32 as gzip's trailer needs it (RFC 1952 section 8: the reflected polynomial
//! 0xEDB88320, initial value and final XOR all ones).
//!
//! Slicing by eight: eight 256-entry tables, built at compile time, let one step fold
//! eight input bytes with eight table lookups instead of a serial chain of eight, which
//! makes the checksum a small part of a scrape's compression time (8 KiB of tables).

/// The reflected CRC-32 polynomial of gzip, zlib and Ethernet.
const POLYNOMIAL: u32 = 0xEDB8_8320;

/// `TABLES[0][b]` is the CRC of byte `b`; `TABLES[k][b]` is that CRC advanced through
/// `k` further zero bytes, so eight bytes can be folded at once.
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut b = 0;
    while b < 256 {
        let mut crc = b as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let previous = tables[k - 1][b];
            tables[k][b] = (previous >> 8) ^ tables[0][(previous & 0xFF) as usize];
            b += 1;
        }
        k += 1;
    }
    tables
}

/// The CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let low = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = TABLES[7][(low & 0xFF) as usize]
            ^ TABLES[6][((low >> 8) & 0xFF) as usize]
            ^ TABLES[5][((low >> 16) & 0xFF) as usize]
            ^ TABLES[4][(low >> 24) as usize]
            ^ TABLES[3][(high & 0xFF) as usize]
            ^ TABLES[2][((high >> 8) & 0xFF) as usize]
            ^ TABLES[1][((high >> 16) & 0xFF) as usize]
            ^ TABLES[0][(high >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ byte as u32) & 0xFF) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn known_values() {
        // The check value of CRC-32/ISO-HDLC, and two values zlib's crc32() gives.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn sliced_and_bytewise_paths_agree() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in 0..40 {
            let bytewise = data[..len].iter().fold(!0u32, |crc, &b| {
                (crc >> 8) ^ super::TABLES[0][((crc ^ b as u32) & 0xFF) as usize]
            });
            assert_eq!(crc32(&data[..len]), !bytewise, "length {len}");
        }
    }
}
