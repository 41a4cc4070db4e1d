//! Pictures: their dimensions, a small thumbnail, location data removed from JPEGs, and
//! avatars cropped square. All of it is CPU work for the blocking pool.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The largest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIZE: u32 = 320;
/// The side of an avatar, in pixels.
pub const AVATAR_SIZE: u32 = 256;
/// Pictures larger than this (per side) are not decoded: a tiny file can claim to be huge
/// and take all memory when unpacked.
const MAX_SIDE: u32 = 12_000;
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("the picture cannot be read: {0}")]
pub struct ImageError(String);

/// What an uploaded picture turned out to be.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// A small version, as JPEG (or PNG, for pictures with transparency).
    pub thumbnail: Vec<u8>,
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, ImageError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| ImageError(e.to_string()))
}

fn encode(image: &DynamicImage) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    if image.color().has_alpha() {
        image.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
    } else {
        let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 82))
    }
    .map_err(|e| ImageError(e.to_string()))?;
    Ok(out)
}

/// Reads a picture's dimensions and makes its thumbnail.
pub fn inspect(bytes: &[u8]) -> Result<Picture, ImageError> {
    let image = decode(bytes)?;
    // `thumbnail` scales small pictures up as well as large ones down; a picture that
    // already fits is its own thumbnail.
    let fits = image.width() <= THUMBNAIL_SIZE && image.height() <= THUMBNAIL_SIZE;
    let thumbnail = if fits {
        encode(&image)?
    } else {
        encode(&image.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE))?
    };
    Ok(Picture { width: image.width(), height: image.height(), thumbnail })
}

/// An avatar from any picture: the largest centred square, scaled to `AVATAR_SIZE`.
pub fn avatar(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let image = decode(bytes)?;
    let side = image.width().min(image.height());
    let square =
        image.crop_imm((image.width() - side) / 2, (image.height() - side) / 2, side, side);
    encode(&square.resize_exact(AVATAR_SIZE, AVATAR_SIZE, image::imageops::FilterType::Lanczos3))
}

/// A JPEG without the metadata that can locate or identify the photographer: every Exif
/// and XMP segment is dropped (GPS position, camera serial, time). Only the orientation is
/// kept, in a minimal Exif segment of its own, so the photo still shows the right way up.
/// Returns `None` when the bytes are not a JPEG this can walk; they are then refused.
pub fn strip_jpeg_metadata(jpeg: &[u8]) -> Option<Vec<u8>> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    let orientation = exif::Reader::new()
        .read_from_container(&mut Cursor::new(jpeg))
        .ok()
        .and_then(|exif| {
            exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|field| field.value.get_uint(0))
        })
        .filter(|value| (2..=8).contains(value));

    let mut out = Vec::with_capacity(jpeg.len());
    out.extend_from_slice(&[0xff, 0xd8]);
    if let Some(orientation) = orientation {
        out.extend_from_slice(&orientation_segment(orientation as u16));
    }
    let mut at = 2;
    loop {
        if jpeg.get(at)? != &0xff {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        // Markers without a length: padding and restart markers.
        if marker == 0xff || (0xd0..=0xd7).contains(&marker) || marker == 0x01 {
            out.push(0xff);
            at += if marker == 0xff { 1 } else { 2 };
            if marker != 0xff {
                out.push(marker);
            }
            continue;
        }
        let length = u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]) as usize;
        let segment = jpeg.get(at..at + 2 + length)?;
        // From the start of scan on, the rest is picture data: copy it as it is.
        if marker == 0xda {
            out.extend_from_slice(&jpeg[at..]);
            return Some(out);
        }
        let payload = &segment[4..];
        let metadata = marker == 0xe1
            && (payload.starts_with(b"Exif\0\0") || payload.starts_with(b"http://ns.adobe.com/"));
        if !metadata {
            out.extend_from_slice(segment);
        }
        at += 2 + length;
    }
}

/// An Exif APP1 segment holding only an orientation.
fn orientation_segment(orientation: u16) -> Vec<u8> {
    let mut segment = vec![0xff, 0xe1, 0x00, 34];
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian TIFF, IFD0 at offset 8
    segment.extend_from_slice(&[0, 1]); // one entry
    segment.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]); // Orientation, SHORT, 1
    segment.extend_from_slice(&orientation.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, then no next IFD
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        let mut out = Vec::new();
        image.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 80)).expect("encodes");
        out
    }

    /// A JPEG with an Exif segment holding an orientation and a GPS position.
    fn jpeg_with_location(orientation: u16) -> Vec<u8> {
        let plain = jpeg(40, 20);
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
        // IFD0: Orientation, and a pointer to the GPS IFD.
        tiff.extend_from_slice(&[0, 2]);
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        // GPS IFD at 38: GPSLatitudeRef "N".
        tiff.extend_from_slice(&[0, 1]);
        tiff.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        let mut app1 = vec![0xff, 0xe1];
        app1.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    fn fields(jpeg: &[u8]) -> Vec<exif::Tag> {
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(jpeg))
            .map(|exif| exif.fields().map(|f| f.tag).collect())
            .unwrap_or_default()
    }

    #[test]
    fn location_is_removed_and_orientation_kept() {
        let original = jpeg_with_location(6);
        assert!(fields(&original).contains(&exif::Tag::GPSLatitudeRef), "the fixture has GPS");
        let cleaned = strip_jpeg_metadata(&original).expect("a JPEG");
        assert_eq!(fields(&cleaned), vec![exif::Tag::Orientation]);
        assert_eq!(inspect(&cleaned).map(|p| (p.width, p.height)).ok(), Some((40, 20)));
    }

    #[test]
    fn a_jpeg_without_metadata_stays_readable() {
        let cleaned = strip_jpeg_metadata(&jpeg(8, 8)).expect("a JPEG");
        assert!(fields(&cleaned).is_empty());
        assert!(inspect(&cleaned).is_ok());
        assert_eq!(strip_jpeg_metadata(b"not a jpeg"), None);
    }

    #[test]
    fn thumbnails_are_small_and_avatars_square() {
        let picture = inspect(&jpeg(1200, 600)).expect("decodes");
        assert_eq!((picture.width, picture.height), (1200, 600));
        let thumb = image::load_from_memory(&picture.thumbnail).expect("thumbnail decodes");
        assert_eq!((thumb.width(), thumb.height()), (320, 160));
        let avatar =
            image::load_from_memory(&avatar(&jpeg(300, 500)).expect("avatar")).expect("decodes");
        assert_eq!((avatar.width(), avatar.height()), (AVATAR_SIZE, AVATAR_SIZE));
    }
}
