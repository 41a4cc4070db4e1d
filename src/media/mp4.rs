//! Whether an MP4 (ISO base media) file holds video, read from its tracks' handlers.
//!
//! An MP4 file is a sequence of boxes, each a size, a four-letter type and a body; some
//! boxes hold others. Each track (`moov` → `trak` → `mdia`) names what it carries in its
//! handler box (`hdlr`): `soun` for sound, `vide` for video. The brand in `ftyp` does not
//! tell: Safari's MediaRecorder writes sound-only files branded `iso5`, `mp42` or `isom`.
//! What MediaRecorder writes is fragmented, with `moov` right after `ftyp`, well within
//! the first few kilobytes. Only that path is walked; every other box is skipped by its
//! size, so bytes inside the media data can never be taken for a track.

const MOOV: [u8; 4] = *b"moov";
const TRAK: [u8; 4] = *b"trak";
const MDIA: [u8; 4] = *b"mdia";
const HDLR: [u8; 4] = *b"hdlr";
const SOUND: [u8; 4] = *b"soun";
const VIDEO: [u8; 4] = *b"vide";
/// Where `handler_type` sits in an `hdlr` body: after the version and flags (4 bytes) and
/// `pre_defined` (4 bytes).
const HANDLER_TYPE_AT: usize = 8;

/// `Some(true)` when a track is video, `Some(false)` when the whole `moov` was read and
/// its tracks hold sound and no video, `None` when `head` ends or breaks before `moov`
/// does (or `moov` has no sound track either).
pub fn holds_video(head: &[u8]) -> Option<bool> {
    // The boxes we are inside, with where each ends (`None`: to the end of the file).
    let mut open: Vec<([u8; 4], Option<usize>)> = Vec::new();
    let mut sound_seen = false;
    let mut at = 0;
    loop {
        while let Some(&(kind, Some(end))) = open.last() {
            if at < end {
                break;
            }
            open.pop();
            if kind == MOOV {
                return sound_seen.then_some(false);
            }
        }
        let (kind, header_len, size) = box_header(head.get(at..)?)?;
        let body = at.checked_add(header_len)?;
        let end = match size {
            Some(size) => Some(at.checked_add(usize::try_from(size).ok()?)?),
            None => None,
        };
        let parent = open.last().map(|&(kind, _)| kind);
        match (parent, kind) {
            (None, MOOV) | (Some(MOOV), TRAK) | (Some(TRAK), MDIA) => {
                open.push((kind, end));
                at = body;
                continue;
            }
            _ => {}
        }
        // Any other box is a leaf to us, and needs a known size to be stepped over.
        let end = end?;
        if parent == Some(MDIA) && kind == HDLR {
            let handler = head.get(body..end)?.get(HANDLER_TYPE_AT..HANDLER_TYPE_AT + 4)?;
            if handler == VIDEO {
                return Some(true);
            }
            sound_seen |= handler == SOUND;
        }
        at = end;
    }
}

/// A box's type, the length of its header, and its whole size (header included); `None`
/// for the size of a box that runs to the end of the file. `None` when the header does
/// not fit in `bytes` or claims a size smaller than itself.
fn box_header(bytes: &[u8]) -> Option<([u8; 4], usize, Option<u64>)> {
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (header_len, size) = match size {
        0 => (8, None),
        // The size follows as 64 bits.
        1 => (16, Some(u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?))),
        size => (8, Some(u64::from(size))),
    };
    if size.is_some_and(|size| size < header_len as u64) {
        return None;
    }
    Some((kind, header_len, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(body.len() + 8).expect("small test box");
        [&size.to_be_bytes()[..], kind, body].concat()
    }

    fn track(handler: &[u8; 4]) -> Vec<u8> {
        let hdlr = [&[0; 8][..], handler, &[0; 12], b"Handler\0"].concat();
        let mdia = [mp4_box(b"mdhd", &[0; 24]), mp4_box(b"hdlr", &hdlr)].concat();
        mp4_box(b"trak", &[mp4_box(b"tkhd", &[0; 84]), mp4_box(b"mdia", &mdia)].concat())
    }

    /// `ftyp` with `brand`, then `moov` with `tracks`, then a fragment whose data is
    /// `payload`: what MediaRecorder writes, in miniature.
    fn recording(brand: &[u8; 4], tracks: &[Vec<u8>], payload: &[u8]) -> Vec<u8> {
        let ftyp = mp4_box(b"ftyp", &[&brand[..], &[0, 0, 2, 0], b"isomiso2"].concat());
        let moov = mp4_box(b"moov", &[mp4_box(b"mvhd", &[0; 100]), tracks.concat()].concat());
        let moof = mp4_box(b"moof", &mp4_box(b"mfhd", &[0; 8]));
        [ftyp, moov, moof, mp4_box(b"mdat", payload)].concat()
    }

    #[test]
    fn sound_tracks_are_not_video_whatever_the_brand_or_the_data() {
        let data = [track(b"vide"), b"vide".to_vec()].concat();
        for brand in [b"isom", b"iso5", b"mp42"] {
            assert_eq!(holds_video(&recording(brand, &[track(b"soun")], &data)), Some(false));
        }
    }

    #[test]
    fn a_video_track_is_video_beside_sound() {
        let file = recording(b"isom", &[track(b"soun"), track(b"vide")], b"");
        assert_eq!(holds_video(&file), Some(true));
        assert_eq!(holds_video(&recording(b"mp42", &[track(b"vide")], b"")), Some(true));
    }

    #[test]
    fn a_cut_or_broken_moov_is_undecided() {
        let file = recording(b"isom", &[track(b"soun"), track(b"vide")], b"");
        let second_track = file.windows(4).rposition(|w| w == b"trak").expect("two tracks");
        assert_eq!(holds_video(&file[..second_track]), None, "cut between the tracks");
        assert_eq!(holds_video(&recording(b"isom", &[], b"")), None, "no track at all");
        assert_eq!(holds_video(b"\0\0\0\x04moov"), None, "a size below the header");
        assert_eq!(holds_video(b"\0\0\0\x01moov\0\0\0\0\0\0\0\x02"), None, "a large size too");
        assert_eq!(holds_video(b"\0\0\0\x18ftypisom"), None, "ftyp cut off");
        assert_eq!(holds_video(b""), None);
    }

    #[test]
    fn moov_after_the_media_data_is_out_of_reach() {
        let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0");
        let file = [ftyp, mp4_box(b"mdat", &[0; 9000]), mp4_box(b"moov", &track(b"soun"))].concat();
        assert_eq!(holds_video(&file[..8192]), None);
    }
}
