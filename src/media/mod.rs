//! Uploaded files: what a file is (decided from its bytes), where its bytes live (`blobs`),
//! and what is done to pictures (`images`: dimensions, thumbnails, location data removed,
//! avatars cropped square).
//!
//! Architecture invariant: a file's type comes from its bytes, never from its name or the
//! Content-Type the client sent; anything that is not a picture, video or sound we know is
//! a plain file, served as an attachment, never inline.

pub mod blobs;
pub mod images;
pub mod metadata;
mod mp4;
mod webm;
pub mod workers;

pub use crate::domain::{MediaId, MediaKind};

/// A file's type as its first bytes tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: MediaKind,
    /// The Content-Type it is served with.
    pub mime: &'static str,
}

/// How many bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Decides what a file is from its first bytes. Only the formats browsers play safely are
/// recognised; everything else (SVG, HTML, scripts, archives, documents) is a plain file.
pub fn sniff(head: &[u8]) -> Sniffed {
    let file = Sniffed { kind: MediaKind::File, mime: "application/octet-stream" };
    let Some(found) = infer::get(head) else { return file };
    let (kind, mime) = match found.mime_type() {
        "image/png" => (MediaKind::Image, "image/png"),
        "image/jpeg" => (MediaKind::Image, "image/jpeg"),
        "image/gif" => (MediaKind::Image, "image/gif"),
        "image/webp" => (MediaKind::Image, "image/webp"),
        // A WebM or Matroska file whose tracks are all sound is a recording of sound (what
        // browsers' MediaRecorder writes for a voice message). One whose track list does
        // not fit in the head is shown as video, which plays sound too.
        "video/webm" | "video/x-matroska" if webm::holds_video(head) == Some(false) => {
            (MediaKind::Audio, "audio/webm")
        }
        "video/webm" | "video/x-matroska" => (MediaKind::Video, "video/webm"),
        // Likewise an MP4 whose tracks are all sound, whatever its brand (Safari's
        // MediaRecorder brands its sound-only recordings `iso5`, `mp42` or `isom`). One whose
        // `moov` does not fit in the head (as when it comes after the media data) is video.
        "video/mp4" if mp4::holds_video(head) == Some(false) => (MediaKind::Audio, "audio/mp4"),
        "video/mp4" => (MediaKind::Video, "video/mp4"),
        "audio/m4a" | "audio/x-m4a" | "audio/mp4" => (MediaKind::Audio, "audio/mp4"),
        "audio/ogg" | "audio/opus" => (MediaKind::Audio, "audio/ogg"),
        "audio/mpeg" => (MediaKind::Audio, "audio/mpeg"),
        "audio/x-wav" | "audio/wav" => (MediaKind::Audio, "audio/wav"),
        _ => return file,
    };
    Sniffed { kind, mime }
}

/// A file name that is safe in a Content-Disposition header and on any file system: the
/// base name only, printable characters, no quotes or separators, at most 100 characters.
/// Falls back to `file` with the type's extension.
pub fn safe_file_name(name: &str, sniffed: Sniffed) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| {
            !c.is_control() && !crate::domain::is_invisible(*c) && !"\"\\/:*?<>|;".contains(*c)
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        return format!("file.{}", extension(sniffed));
    }
    cleaned
}

fn extension(sniffed: Sniffed) -> &'static str {
    match sniffed.mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/webm" | "audio/webm" => "webm",
        "video/mp4" => "mp4",
        "audio/mp4" => "m4a",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/wav" => "wav",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(bytes: &[u8]) -> (MediaKind, &'static str) {
        let sniffed = sniff(bytes);
        (sniffed.kind, sniffed.mime)
    }

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(kind(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), (MediaKind::Image, "image/png"));
        assert_eq!(kind(b"\xff\xd8\xff\xe0\0\x10JFIF"), (MediaKind::Image, "image/jpeg"));
        assert_eq!(kind(b"GIF89a\x01\0\x01\0"), (MediaKind::Image, "image/gif"));
        assert_eq!(kind(b"RIFF\0\0\0\0WEBPVP8 "), (MediaKind::Image, "image/webp"));
        assert_eq!(kind(b"RIFF\0\0\0\0WAVEfmt "), (MediaKind::Audio, "audio/wav"));
        assert_eq!(kind(b"ID3\x04\0\0\0\0\0\0"), (MediaKind::Audio, "audio/mpeg"));
        assert_eq!(kind(b"OggS\0\x02\0\0\0\0\0\0\0\0"), (MediaKind::Audio, "audio/ogg"));
        assert_eq!(kind(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"), (MediaKind::Video, "video/mp4"));
        assert_eq!(kind(b"\0\0\0\x18ftypM4A \0\0\x02\0isomiso2"), (MediaKind::Audio, "audio/mp4"));
    }

    #[test]
    fn webm_whose_tracks_are_all_sound_is_sound() {
        let header = b"\x1a\x45\xdf\xa3\x97\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm";
        // A Void element after, for the length the type check wants.
        let void = [&[0xec, 0x41, 0x2c][..], &[0; 300]].concat();
        let file = |track: &[u8]| {
            let entry = [&[0xae, 0x80 | track.len() as u8][..], track].concat();
            let tracks = [&[0x16, 0x54, 0xae, 0x6b, 0x80 | entry.len() as u8][..], &entry].concat();
            let segment =
                [&[0x18, 0x53, 0x80, 0x67, 0x80 | tracks.len() as u8][..], &tracks].concat();
            [&header[..], &segment, &void].concat()
        };
        assert_eq!(kind(&file(b"\x86\x86A_OPUS")), (MediaKind::Audio, "audio/webm"));
        assert_eq!(kind(&file(b"\x86\x85V_VP8")), (MediaKind::Video, "video/webm"));
        assert_eq!(
            kind(&[&header[..], &void].concat()),
            (MediaKind::Video, "video/webm"),
            "no track list"
        );
    }

    #[test]
    fn mp4_whose_tracks_are_all_sound_is_sound_whatever_its_brand() {
        let mp4_box = |kind: &[u8], body: &[u8]| {
            [&u32::try_from(body.len() + 8).expect("small").to_be_bytes()[..], kind, body].concat()
        };
        let track = |handler: &[u8]| {
            let hdlr = mp4_box(b"hdlr", &[&[0; 8][..], handler, &[0; 13]].concat());
            mp4_box(b"trak", &mp4_box(b"mdia", &hdlr))
        };
        let file = |tracks: &[u8]| {
            let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2");
            [ftyp, mp4_box(b"moov", tracks), mp4_box(b"mdat", &[0; 300])].concat()
        };
        let sound = file(&track(b"soun"));
        assert_eq!(kind(&sound), (MediaKind::Audio, "audio/mp4"));
        let video = file(&[track(b"soun"), track(b"vide")].concat());
        assert_eq!(kind(&video), (MediaKind::Video, "video/mp4"));
        let moov_end = sound.windows(4).position(|w| w == b"mdat").expect("mdat") - 4;
        assert_eq!(kind(&sound[..moov_end - 1]), (MediaKind::Video, "video/mp4"), "cut moov");
    }

    #[test]
    fn markup_and_unknown_bytes_are_plain_files() {
        for bytes in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"[..],
            b"<!doctype html><script>",
            b"hello",
            b"",
        ] {
            assert_eq!(kind(bytes), (MediaKind::File, "application/octet-stream"), "{bytes:?}");
        }
    }

    #[test]
    fn file_names_are_made_safe() {
        let png = sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert_eq!(safe_file_name("../../etc/pass\"wd;.png", png), "passwd.png");
        assert_eq!(safe_file_name("C:\\photos\\cat.png", png), "cat.png");
        assert_eq!(safe_file_name("...", png), "file.png");
        assert_eq!(safe_file_name("", png), "file.png");
    }

    #[test]
    fn media_ids_are_long_and_parse_back() {
        let id = MediaId::generate();
        assert_eq!(id.as_str().len(), 26);
        assert_eq!(MediaId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(MediaId::generate(), id);
        assert_eq!(MediaId::parse("short"), None);
        assert_eq!(MediaId::parse(&"u".repeat(26)), None);
    }
}
