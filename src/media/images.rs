//! Pictures: their dimensions, a small thumbnail, and avatars cropped square (their
//! metadata is `metadata.rs`'s). All of it is CPU work for the picture threads
//! (`workers.rs`).
//!
//! A picture's Exif orientation (how a phone was held) is kept in the stored file, where
//! browsers apply it, and applied here to everything made from the picture: thumbnails and
//! avatars are the right way up, and the dimensions recorded are those shown.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The largest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIZE: u32 = 320;
/// The side of an avatar, in pixels.
pub const AVATAR_SIZE: u32 = 256;
/// Pictures larger than this (per side) are not decoded: a tiny file can claim to be huge
/// and take all memory when unpacked.
const MAX_SIDE: u32 = 12_000;
/// The most memory one decode may take: a 64-megapixel photo in full colour. Callers
/// bound how much decodes at once ([`decoded_size`]).
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

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

/// A picture as stored (not yet turned), and how to turn it to show it.
///
/// The orientation is applied to what is made from the picture, after it has been scaled
/// down, not to the picture itself: turning a picture by 90° copies it, which would double
/// the memory a large photo takes. Scaling to fit a square and cropping a centred square
/// come out the same either way round.
struct Decoded {
    image: DynamicImage,
    orientation: Orientation,
}

impl Decoded {
    /// The dimensions the picture is shown with: a quarter turn swaps them.
    fn shown_dimensions(&self) -> (u32, u32) {
        let (width, height) = (self.image.width(), self.image.height());
        match self.orientation {
            Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH => (height, width),
            Orientation::NoTransforms
            | Orientation::Rotate180
            | Orientation::FlipHorizontal
            | Orientation::FlipVertical => (width, height),
        }
    }

    /// `made` (made from the stored picture), turned the way the picture is shown.
    fn turned(&self, mut made: DynamicImage) -> DynamicImage {
        made.apply_orientation(self.orientation);
        made
    }
}

/// The memory decoding the picture in `path` takes, read from its header alone (a few
/// bytes, nothing decoded): what picture work waits to have before it starts. Refused as
/// `decode` would refuse it: a side over MAX_SIDE, a decode over MAX_DECODE_BYTES.
pub fn decoded_size(path: &std::path::Path) -> Result<u64, ImageError> {
    let failed = |e: image::ImageError| ImageError(e.to_string());
    let mut reader = ImageReader::open(path)
        .and_then(ImageReader::with_guessed_format)
        .map_err(|e| ImageError(e.to_string()))?;
    reader.limits(limits());
    let decoder = reader.into_decoder().map_err(failed)?;
    let bytes = decoder.total_bytes();
    if bytes > MAX_DECODE_BYTES {
        return Err(ImageError(format!("it would take {bytes} bytes to decode")));
    }
    Ok(bytes)
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

fn decode(bytes: &[u8]) -> Result<Decoded, ImageError> {
    let failed = |e: image::ImageError| ImageError(e.to_string());
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError(e.to_string()))?;
    let mut limits = limits();
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(failed)?;
    // Unreadable Exif is no orientation, as browsers take it.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // As `ImageReader::decode` does: the picture's own buffer counts against the budget.
    limits.reserve(decoder.total_bytes()).map_err(failed)?;
    decoder.set_limits(limits).map_err(failed)?;
    let image = DynamicImage::from_decoder(decoder).map_err(failed)?;
    Ok(Decoded { image, orientation })
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

/// Reads a picture's dimensions (as shown) and makes its thumbnail (the right way up).
pub fn inspect(bytes: &[u8]) -> Result<Picture, ImageError> {
    let decoded = decode(bytes)?;
    let image = &decoded.image;
    // `thumbnail` scales small pictures up as well as large ones down; a picture that
    // already fits is its own thumbnail.
    let fits = image.width() <= THUMBNAIL_SIZE && image.height() <= THUMBNAIL_SIZE;
    let small = if fits { image.clone() } else { image.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE) };
    let thumbnail = encode(&decoded.turned(small))?;
    let (width, height) = decoded.shown_dimensions();
    Ok(Picture { width, height, thumbnail })
}

/// An avatar from any picture: the largest centred square, scaled to `AVATAR_SIZE`, the
/// right way up.
pub fn avatar(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let decoded = decode(bytes)?;
    let image = &decoded.image;
    // A large photo is first brought down, whole, to twice the avatar on its shorter side
    // (quick, and small): its square cropped at full size would copy as much as the photo
    // takes, beyond what the memory budget counts.
    let shorter = image.width().min(image.height());
    let small;
    let image = if shorter > 2 * AVATAR_SIZE {
        let scale =
            |side: u32| (u64::from(side) * u64::from(2 * AVATAR_SIZE) / u64::from(shorter)) as u32;
        small = image.thumbnail_exact(scale(image.width()).max(1), scale(image.height()).max(1));
        &small
    } else {
        image
    };
    let side = image.width().min(image.height());
    let square =
        image.crop_imm((image.width() - side) / 2, (image.height() - side) / 2, side, side);
    let scaled =
        square.resize_exact(AVATAR_SIZE, AVATAR_SIZE, image::imageops::FilterType::Lanczos3);
    encode(&decoded.turned(scaled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::metadata::strip_jpeg_metadata;

    fn encoded(image: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 80)).expect("encodes");
        out
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        encoded(&DynamicImage::new_rgb8(width, height))
    }

    /// A JPEG whose left half is red and right half blue, as stored: turned a quarter
    /// clockwise (orientation 6), red is on top.
    fn red_then_blue(width: u32, height: u32) -> Vec<u8> {
        encoded(&DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) }
        })))
    }

    /// Whether a pixel is mostly red (rather than blue).
    fn is_red(image: &DynamicImage, x: u32, y: u32) -> bool {
        let [red, _, blue] = image.to_rgb8().get_pixel(x, y).0;
        red > 200 && blue < 60
    }

    /// A JPEG with an Exif segment holding an orientation and a GPS position.
    fn jpeg_with_location(orientation: u16) -> Vec<u8> {
        with_location(&jpeg(40, 20), orientation)
    }

    /// `plain` with an Exif segment holding an orientation and a GPS position, as a phone
    /// camera writes one.
    fn with_location(plain: &[u8], orientation: u16) -> Vec<u8> {
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
        let shown = inspect(&cleaned).map(|p| (p.width, p.height)).ok();
        assert_eq!(shown, Some((20, 40)), "a quarter turn swaps the dimensions");
    }

    #[test]
    fn thumbnails_avatars_and_dimensions_follow_the_orientation() {
        // Stored 800×400 with red on the left; shown 400×800 with red on top.
        let photo = strip_jpeg_metadata(&with_location(&red_then_blue(800, 400), 6)).expect("JPEG");
        let picture = inspect(&photo).expect("decodes");
        assert_eq!((picture.width, picture.height), (400, 800));
        let thumb = image::load_from_memory(&picture.thumbnail).expect("thumbnail decodes");
        assert_eq!((thumb.width(), thumb.height()), (160, 320));
        assert!(is_red(&thumb, 80, 10) && !is_red(&thumb, 80, 310), "red on top");

        // Small enough to be its own thumbnail: turned all the same.
        let small = inspect(&with_location(&red_then_blue(64, 32), 6)).expect("decodes");
        let thumb = image::load_from_memory(&small.thumbnail).expect("thumbnail decodes");
        assert_eq!((thumb.width(), thumb.height()), (32, 64));
        assert!(is_red(&thumb, 16, 4) && !is_red(&thumb, 16, 60), "red on top");

        // A square stored with red on the left shows red on top once turned.
        let square = avatar(&with_location(&red_then_blue(300, 300), 6)).expect("avatar");
        let square = image::load_from_memory(&square).expect("avatar decodes");
        assert_eq!((square.width(), square.height()), (AVATAR_SIZE, AVATAR_SIZE));
        assert!(is_red(&square, 128, 10) && !is_red(&square, 128, 245), "red on top");

        // Orientation 3 is half a turn: the dimensions stay, red moves to the right.
        let upside_down = inspect(&with_location(&red_then_blue(800, 400), 3)).expect("decodes");
        assert_eq!((upside_down.width, upside_down.height), (800, 400));
        let thumb = image::load_from_memory(&upside_down.thumbnail).expect("thumbnail decodes");
        assert!(is_red(&thumb, 310, 80) && !is_red(&thumb, 10, 80), "red on the right");
    }

    #[test]
    fn broken_segment_lengths_are_refused_without_a_panic() {
        for bytes in [
            &b"\xff\xd8\xff\xe0\x00\x00"[..],
            b"\xff\xd8\xff\xe0\x00\x01JFIF",
            b"\xff\xd8\xff\xe1\x00\x03E",
            b"\xff\xd8\xff\xe0\x00\x02\xff\xda\x00\x00",
            b"\xff\xd8\xff\xe0\x00",
            b"\xff\xd8\xff",
        ] {
            assert_eq!(strip_jpeg_metadata(bytes), None, "{bytes:?}");
        }
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
