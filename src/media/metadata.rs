//! Pictures without the metadata that can locate or identify the photographer, in every
//! format Confab serves as a picture: GPS positions, camera serials, times, captions and
//! comments, in whatever layout a camera or an editor wrote them. Only the orientation (how
//! the phone was held) is kept, in a minimal Exif record of its own, so that browsers
//! still show the photo the right way up.
//!
//! Each format is walked segment by segment (JPEG), chunk by chunk (PNG, WebP), keeping
//! what draws the picture and its colours, dropping the rest, and nothing after the
//! picture's end: a second picture appended to a JPEG (the multi-picture layout phones
//! write, with its own Exif) goes too. GIF has no place for a location and is kept as is.
//! A file these walks cannot follow is refused as a picture (`None`).

use std::borrow::Cow;
use std::io::Cursor;

/// `bytes` (of type `mime`) without their metadata, borrowed for a format that has none;
/// `None` if they cannot be walked.
pub fn strip<'a>(mime: &str, bytes: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    match mime {
        "image/jpeg" => strip_jpeg_metadata(bytes).map(Cow::Owned),
        "image/png" => strip_png_metadata(bytes).map(Cow::Owned),
        "image/webp" => strip_webp_metadata(bytes).map(Cow::Owned),
        _ => Some(Cow::Borrowed(bytes)),
    }
}

/// The Exif orientation of a picture (2 to 8), if it has one other than "as stored".
fn orientation(bytes: &[u8]) -> Option<u16> {
    let exif = exif::Reader::new().read_from_container(&mut Cursor::new(bytes)).ok()?;
    let value = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?.value.get_uint(0)?;
    u16::try_from(value).ok().filter(|value| (2..=8).contains(value))
}

/// A big-endian TIFF record holding only an orientation: what Exif blocks carry.
fn orientation_tiff(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF, IFD0 at offset 8
    tiff.extend_from_slice(&[0, 1]); // one entry
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]); // Orientation, SHORT, 1
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, then no next IFD
    tiff
}

/// A JPEG keeping, before its frame, only the segments that draw it and give its colours
/// (tables, frame and scan headers, JFIF, the ICC profile, Adobe's colour transform): Exif,
/// XMP, IPTC, comments and the multi-picture index go, and so does anything after the end
/// of the picture.
pub fn strip_jpeg_metadata(jpeg: &[u8]) -> Option<Vec<u8>> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    let mut out = Vec::with_capacity(jpeg.len());
    out.extend_from_slice(&[0xff, 0xd8]);
    if let Some(orientation) = orientation(jpeg) {
        let tiff = orientation_tiff(orientation);
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&u16::try_from(tiff.len() + 8).ok()?.to_be_bytes());
        out.extend_from_slice(b"Exif\0\0");
        out.extend_from_slice(&tiff);
    }
    let mut at = 2;
    loop {
        if jpeg.get(at)? != &0xff {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        match marker {
            // Padding before a marker.
            0xff => {
                at += 1;
                continue;
            }
            // The end of the picture: whatever follows is not this picture.
            0xd9 => {
                out.extend_from_slice(&[0xff, 0xd9]);
                return Some(out);
            }
            // Markers without a length.
            0x01 | 0xd0..=0xd7 => {
                out.extend_from_slice(&[0xff, marker]);
                at += 2;
                continue;
            }
            _ => {}
        }
        // A segment's length counts its own two bytes; less is not a JPEG.
        let length = u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]) as usize;
        if length < 2 {
            return None;
        }
        let end = at.checked_add(2 + length)?;
        let segment = jpeg.get(at..end)?;
        if marker == 0xda {
            // A scan: its header, then entropy-coded data up to the next marker (a
            // progressive JPEG has several scans, with tables between them).
            let data_end = scan_end(jpeg, end);
            out.extend_from_slice(jpeg.get(at..data_end)?);
            if data_end >= jpeg.len() {
                // Cut off before its end: keep what there is, as browsers show it.
                return Some(out);
            }
            at = data_end;
            continue;
        }
        let payload = segment.get(4..)?;
        let keep = match marker {
            0xe0 => true,                                  // JFIF
            0xe2 => payload.starts_with(b"ICC_PROFILE\0"), // colours, not the MPF index
            0xee => true,                                  // Adobe: the colour transform
            0xe1 | 0xe3..=0xed | 0xef | 0xfe => false,     // Exif, XMP, IPTC, comments, …
            _ => true,                                     // tables, frame headers
        };
        if keep {
            out.extend_from_slice(segment);
        }
        at = end;
    }
}

/// Where the entropy-coded data that starts at `from` ends: at the first marker that is
/// neither a stuffed 0xFF nor a restart marker, or at the end of the file.
fn scan_end(jpeg: &[u8], from: usize) -> usize {
    let mut at = from;
    while at + 1 < jpeg.len() {
        if jpeg[at] == 0xff {
            match jpeg[at + 1] {
                0x00 | 0xd0..=0xd7 => at += 2,
                0xff => at += 1,
                _ => return at,
            }
        } else {
            at += 1;
        }
    }
    jpeg.len()
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A PNG without its text chunks (captions, comments, locations written as text), its
/// Exif chunk and its time stamp, and nothing after its end; its orientation, if its Exif
/// had one, in a new Exif chunk.
pub fn strip_png_metadata(png: &[u8]) -> Option<Vec<u8>> {
    if !png.starts_with(PNG_SIGNATURE) {
        return None;
    }
    let mut out = Vec::with_capacity(png.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let orientation = orientation(png);
    let mut at = PNG_SIGNATURE.len();
    loop {
        let length = u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?) as usize;
        let kind: [u8; 4] = png.get(at + 4..at + 8)?.try_into().ok()?;
        let end = at.checked_add(12)?.checked_add(length)?;
        let chunk = png.get(at..end)?;
        match &kind {
            b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"tIME" => {}
            _ => out.extend_from_slice(chunk),
        }
        // Exif must come before the picture's data to count.
        if &kind == b"IHDR"
            && let Some(orientation) = orientation
        {
            out.extend_from_slice(&png_chunk(b"eXIf", &orientation_tiff(orientation)));
        }
        if &kind == b"IEND" {
            return Some(out);
        }
        at = end;
    }
}

/// A PNG chunk: its length, kind, data and CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    chunk
}

/// The CRC PNG puts after each chunk (ISO 3309, as zlib's).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A WebP without its Exif and XMP chunks (and their flags in the extended header), and
/// nothing after the file the RIFF header announces; its orientation, if its Exif had one,
/// in a new Exif chunk.
pub fn strip_webp_metadata(webp: &[u8]) -> Option<Vec<u8>> {
    if webp.get(..4)? != b"RIFF" || webp.get(8..12)? != b"WEBP" {
        return None;
    }
    let riff_end = (u32::from_le_bytes(webp.get(4..8)?.try_into().ok()?) as usize)
        .checked_add(8)?
        .min(webp.len());
    let orientation = orientation(webp);
    let mut body = b"WEBP".to_vec();
    let mut extended = false;
    let mut at = 12;
    while at + 8 <= riff_end {
        let kind: [u8; 4] = webp.get(at..at + 4)?.try_into().ok()?;
        let size = u32::from_le_bytes(webp.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        // Chunks are padded to an even length.
        let end = at.checked_add(8)?.checked_add(size)?.checked_add(size % 2)?.min(riff_end);
        let chunk = webp.get(at..end)?;
        match &kind {
            b"EXIF" | b"XMP " => {}
            b"VP8X" => {
                extended = true;
                let mut chunk = chunk.to_vec();
                // Flags: 0x08 Exif, 0x04 XMP; Exif again only for the orientation.
                let flags = chunk.get_mut(8)?;
                *flags &= !0x0c;
                if orientation.is_some() {
                    *flags |= 0x08;
                }
                body.extend_from_slice(&chunk);
            }
            _ => body.extend_from_slice(chunk),
        }
        at = end;
    }
    // Only the extended format has a place for Exif; a plain WebP loses its orientation,
    // which it can only have had if it was not plain.
    if let Some(orientation) = orientation.filter(|_| extended) {
        let tiff = orientation_tiff(orientation);
        body.extend_from_slice(b"EXIF");
        body.extend_from_slice(&u32::try_from(tiff.len()).ok()?.to_le_bytes());
        body.extend_from_slice(&tiff);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).ok()?.to_le_bytes());
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_crc_is_zlibs() {
        // The CRC of "IEND" with no data, as every PNG ends.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn a_scan_ends_at_its_first_real_marker() {
        let jpeg = [0x01, 0xff, 0x00, 0x02, 0xff, 0xd3, 0x04, 0xff, 0xff, 0xd9, 0x05];
        assert_eq!(scan_end(&jpeg, 0), 8, "stuffing and restarts are data; 0xff 0xff pads");
        assert_eq!(scan_end(&[0x01, 0x02], 0), 2);
    }

    #[test]
    fn what_is_not_its_format_is_refused() {
        assert_eq!(strip("image/png", b"not a png"), None);
        assert_eq!(strip("image/webp", b"RIFF\x04\0\0\0WAVE"), None);
        assert_eq!(strip("image/jpeg", b"\xff\xd8\x00"), None);
        assert_eq!(strip("image/gif", b"GIF89a").as_deref(), Some(&b"GIF89a"[..]));
        assert!(matches!(strip("image/gif", b"GIF89a"), Some(Cow::Borrowed(_))));
    }
}
