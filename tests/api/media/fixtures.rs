//! Files to upload: real pictures made with `image`, and sound and video files whose
//! headers are what their formats start with (the server reads no further than that).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

/// A picture with some detail in it, so that it does not compress to nothing.
fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 7 % 256) as u8, (y * 11 % 256) as u8, ((x + y) % 256) as u8])
    }))
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).expect("the picture encodes");
    out
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encoded(&picture(width, height), ImageFormat::Png)
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    picture(width, height)
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 80))
        .expect("the picture encodes");
    out
}

pub fn gif(width: u32, height: u32) -> Vec<u8> {
    encoded(&DynamicImage::ImageRgba8(picture(width, height).to_rgba8()), ImageFormat::Gif)
}

pub fn webp(width: u32, height: u32) -> Vec<u8> {
    encoded(&picture(width, height), ImageFormat::WebP)
}

/// A PNG of three equal squares side by side: blue, red, blue. Cropping its centre square
/// leaves only red; squashing it whole would keep blue at the edges.
pub fn blue_red_blue(side: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(side * 3, side, |x, _| {
        if (side..2 * side).contains(&x) { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) }
    });
    encoded(&DynamicImage::ImageRgb8(image), ImageFormat::Png)
}

/// An Exif record (big-endian TIFF) holding an orientation and a GPS position (latitude
/// "N"), as a phone camera writes one.
pub fn location_tiff(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    // IFD0: Orientation, and a pointer to the GPS IFD.
    tiff.extend_from_slice(&[0, 2]);
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    // The GPS IFD, at 38: GPSLatitudeRef "N".
    tiff.extend_from_slice(&[0, 1]);
    tiff.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    tiff
}

/// `jpeg` with a segment (`marker`, `payload`) inserted after its start.
pub fn jpeg_with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, marker]);
    out.extend_from_slice(&u16::try_from(payload.len() + 2).expect("small").to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A JPEG with an Exif segment holding an orientation and a GPS position (latitude "N"),
/// as a phone camera writes one.
pub fn jpeg_with_location(orientation: u16) -> Vec<u8> {
    let exif = [&b"Exif\0\0"[..], &location_tiff(orientation)].concat();
    jpeg_with_segment(&jpeg(40, 20), 0xe1, &exif)
}

/// A PNG with a text chunk naming a place and an Exif chunk with a GPS position.
pub fn png_with_location(orientation: u16) -> Vec<u8> {
    let plain = png(40, 20);
    let chunk = confab::media::metadata::png_chunk;
    // The signature and IHDR (8 + 25 bytes), then the metadata, then the rest.
    [
        &plain[..33],
        &chunk(b"tEXt", b"Location\0Rue de Rivoli, Paris"),
        &chunk(b"eXIf", &location_tiff(orientation)),
        &plain[33..],
    ]
    .concat()
}

/// A WebP in the extended layout (VP8X) with an Exif chunk holding a GPS position and an
/// XMP chunk naming a place.
pub fn webp_with_location(orientation: u16) -> Vec<u8> {
    let (width, height) = (40u32, 20u32);
    let plain = webp(width, height);
    // The plain file's only chunk (VP8L or VP8), after "RIFF", its size and "WEBP".
    let image = &plain[12..];
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut out = kind.to_vec();
        out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    };
    let mut vp8x = vec![0x08 | 0x04, 0, 0, 0]; // Exif and XMP present
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let xmp = br#"<x:xmpmeta><photoshop:City>Paris</photoshop:City></x:xmpmeta>"#;
    let body = [
        &b"WEBP"[..],
        &chunk(b"VP8X", &vp8x),
        image,
        &chunk(b"EXIF", &location_tiff(orientation)),
        &chunk(b"XMP ", xmp),
    ]
    .concat();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// An EBML element: its id, its size (one byte when it fits, else eight), its body.
fn ebml(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    if body.len() < 127 {
        out.push(0x80 | body.len() as u8);
    } else {
        out.push(0x01);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
    }
    out.extend_from_slice(body);
    out
}

/// A WebM file with one track of `codec` ("A_OPUS", "V_VP8") and one cluster whose single
/// block holds `payload`: what a browser's MediaRecorder writes, in miniature.
pub fn webm(codec: &str, payload: &[u8]) -> Vec<u8> {
    let header = [
        ebml(&[0x42, 0x86], &[1]),    // EBMLVersion
        ebml(&[0x42, 0xf7], &[1]),    // EBMLReadVersion
        ebml(&[0x42, 0xf2], &[4]),    // EBMLMaxIDLength
        ebml(&[0x42, 0xf3], &[8]),    // EBMLMaxSizeLength
        ebml(&[0x42, 0x82], b"webm"), // DocType
    ]
    .concat();
    let track_type = if codec.starts_with("V_") { 1 } else { 2 };
    let track = [
        ebml(&[0xd7], &[1]),             // TrackNumber
        ebml(&[0x83], &[track_type]),    // TrackType
        ebml(&[0x86], codec.as_bytes()), // CodecID
    ]
    .concat();
    let tracks = ebml(&[0x16, 0x54, 0xae, 0x6b], &ebml(&[0xae], &track));
    let mut block = vec![0x81, 0, 0, 0x80]; // track 1, timecode 0, keyframe
    block.extend_from_slice(payload);
    let cluster =
        ebml(&[0x1f, 0x43, 0xb6, 0x75], &[ebml(&[0xe7], &[0]), ebml(&[0xa3], &block)].concat());
    let segment = ebml(&[0x18, 0x53, 0x80, 0x67], &[tracks, cluster].concat());
    [ebml(&[0x1a, 0x45, 0xdf, 0xa3], &header), segment].concat()
}

/// Sound data for a block: no byte pair that could be taken for anything.
pub fn silence(length: usize) -> Vec<u8> {
    vec![0xf8; length]
}

/// An MP4 (or, with brand `M4A `, an M4A) file: an `ftyp` box and some padding.
pub fn mp4(brand: &[u8; 4]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0x18];
    out.extend_from_slice(b"ftyp");
    out.extend_from_slice(brand);
    out.extend_from_slice(&[0, 0, 0x02, 0]);
    out.extend_from_slice(b"isomiso2");
    padded_box(&mut out, b"free", 400);
    out
}

/// An MP4 box: its size, its type, its body.
fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 8).expect("a small box");
    [&size.to_be_bytes()[..], kind, body].concat()
}

/// A fragmented MP4 as a browser's MediaRecorder writes one, in miniature: `ftyp` with
/// `brand`, `moov` with one track per handler (`soun`, `vide`), then a fragment whose data
/// is `payload`.
pub fn mp4_recording(brand: &[u8; 4], handlers: &[&[u8; 4]], payload: &[u8]) -> Vec<u8> {
    let ftyp = mp4_box(b"ftyp", &[&brand[..], &[0, 0, 0x02, 0], b"isomiso2mp41"].concat());
    let tracks: Vec<u8> = handlers
        .iter()
        .flat_map(|handler| {
            // hdlr: version and flags, pre_defined, handler_type, reserved, name.
            let hdlr = [&[0; 8][..], &handler[..], &[0; 12], b"Handler\0"].concat();
            let mdia = [mp4_box(b"mdhd", &[0; 24]), mp4_box(b"hdlr", &hdlr)].concat();
            mp4_box(b"trak", &[mp4_box(b"tkhd", &[0; 84]), mp4_box(b"mdia", &mdia)].concat())
        })
        .collect();
    let moov = mp4_box(b"moov", &[mp4_box(b"mvhd", &[0; 100]), tracks].concat());
    let moof = mp4_box(b"moof", &mp4_box(b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 1]));
    [ftyp, moov, moof, mp4_box(b"mdat", payload)].concat()
}

fn padded_box(out: &mut Vec<u8>, kind: &[u8; 4], size: u32) {
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend(std::iter::repeat_n(0u8, size as usize - 8));
}

/// An Ogg Vorbis stream's first page: the identification header.
pub fn ogg() -> Vec<u8> {
    let mut out = b"OggS\0\x02".to_vec();
    out.extend_from_slice(&[0; 8]); // granule position
    out.extend_from_slice(&[1, 0, 0, 0]); // serial
    out.extend_from_slice(&[0; 4]); // page sequence
    out.extend_from_slice(&[0; 4]); // checksum
    out.extend_from_slice(&[1, 30]); // one segment of 30 bytes
    out.extend_from_slice(b"\x01vorbis\0\0\0\0\x02\x44\xac\0\0");
    out.resize(400, 0);
    out
}

/// An MP3 file: an ID3v2 tag, then frames.
pub fn mp3() -> Vec<u8> {
    let mut out = b"ID3\x04\0\0\0\0\0\x0a".to_vec();
    out.extend_from_slice(&[0; 10]);
    for _ in 0..3 {
        out.extend_from_slice(&[0xff, 0xfb, 0x90, 0x64]);
        out.extend_from_slice(&[0x55; 413]);
    }
    out
}

/// A WAV file: a RIFF header, a format chunk, and a second of 8 kHz silence.
pub fn wav() -> Vec<u8> {
    let samples = 8000u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + samples).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&samples.to_le_bytes());
    out.extend(std::iter::repeat_n(0x80u8, samples as usize));
    out
}

/// Bytes of no known format.
pub fn binary(length: usize) -> Vec<u8> {
    let mut out = b"CONFAB-DATA\n".to_vec();
    let mut state: u32 = 0x1234_5678;
    while out.len() < length {
        // xorshift: varied bytes without a dependency.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.push((state >> 24) as u8);
    }
    out
}

pub const HTML: &[u8] =
    b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";

pub const SVG: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\">\
    <script>alert(document.cookie)</script></svg>";
