//! Whether a WebM (Matroska) file holds video, read from its track list.
//!
//! A WebM file is a tree of EBML elements, each an id, a size and a body. The track list
//! (`Segment` → `Tracks` → `TrackEntry`) comes before the first `Cluster` of media data,
//! within the first few hundred bytes of what browsers' MediaRecorder writes. Only that
//! path is walked; every other element is skipped by its size, so bytes inside the media
//! data can never be taken for a track.

const EBML_ID_MAX_LEN: usize = 4;
const EBML_SIZE_MAX_LEN: usize = 8;

const SEGMENT: u32 = 0x1853_8067;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CLUSTER: u32 = 0x1F43_B675;
/// `TrackType` of a video track.
const VIDEO: u64 = 1;

/// `Some(true)` when a track is video, `Some(false)` when the whole track list was read
/// and none is, `None` when `head` ends or breaks before the track list does.
pub fn holds_video(head: &[u8]) -> Option<bool> {
    // The masters we are inside, with where each ends (`None`: unknown size, as a live
    // recording's segment has).
    let mut open: Vec<(u32, Option<usize>)> = Vec::new();
    let mut tracks_seen = false;
    let mut at = 0;
    loop {
        while let Some(&(id, Some(end))) = open.last() {
            if at < end {
                break;
            }
            open.pop();
            if id == TRACKS {
                return Some(false);
            }
        }
        let (id, id_len) = element_id(head.get(at..)?)?;
        let (size, size_len) = element_size(head.get(at + id_len..)?)?;
        let body = at + id_len + size_len;
        let end = size.and_then(|size| body.checked_add(usize::try_from(size).ok()?));
        let parent = open.last().map(|&(id, _)| id);
        match (parent, id) {
            (None, SEGMENT) | (Some(SEGMENT), TRACKS) | (Some(TRACKS), TRACK_ENTRY) => {
                tracks_seen |= id == TRACKS;
                open.push((id, end));
                at = body;
                continue;
            }
            // Media data starts: the track list, if any, is behind us.
            (_, CLUSTER) => return tracks_seen.then_some(false),
            _ => {}
        }
        // Any other element is a leaf to us, and needs a known size to be stepped over.
        let end = end?;
        if parent == Some(TRACK_ENTRY) {
            let value = head.get(body..end)?;
            let video = match id {
                TRACK_TYPE => unsigned(value) == Some(VIDEO),
                CODEC_ID => value.starts_with(b"V_"),
                _ => false,
            };
            if video {
                return Some(true);
            }
        }
        at = end;
    }
}

/// An element id: a variable-length integer of up to four bytes, kept with its length
/// marker (ids are written that way in the specification).
fn element_id(bytes: &[u8]) -> Option<(u32, usize)> {
    let len = bytes.first()?.leading_zeros() as usize + 1;
    if len > EBML_ID_MAX_LEN {
        return None;
    }
    let id = bytes.get(..len)?.iter().fold(0u32, |id, &b| id << 8 | u32::from(b));
    Some((id, len))
}

/// An element size: a variable-length integer of up to eight bytes without its marker;
/// all value bits set means the size is unknown (`None`).
fn element_size(bytes: &[u8]) -> Option<(Option<u64>, usize)> {
    let len = bytes.first()?.leading_zeros() as usize + 1;
    if len > EBML_SIZE_MAX_LEN {
        return None;
    }
    let raw = bytes.get(..len)?.iter().fold(0u64, |value, &b| value << 8 | u64::from(b));
    let value_bits = 7 * len as u32;
    let value = raw & ((1u64 << value_bits) - 1);
    let unknown = value == (1u64 << value_bits) - 1;
    Some((if unknown { None } else { Some(value) }, len))
}

fn unsigned(bytes: &[u8]) -> Option<u64> {
    (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |value, &b| value << 8 | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element with a one-byte size.
    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let size = u8::try_from(body.len()).expect("small test element") | 0x80;
        [id, &[size], body].concat()
    }

    fn track(track_type: u8, codec: &str) -> Vec<u8> {
        element(
            &[0xae],
            &[element(&[0x83], &[track_type]), element(&[0x86], codec.as_bytes())].concat(),
        )
    }

    /// A header, then a segment of unknown size holding the tracks and a cluster of
    /// unknown size whose data is `payload`, as MediaRecorder writes them.
    fn recording(tracks: &[Vec<u8>], payload: &[u8]) -> Vec<u8> {
        let header = element(&[0x1a, 0x45, 0xdf, 0xa3], &element(&[0x42, 0x82], b"webm"));
        let unknown = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let tracks = element(&[0x16, 0x54, 0xae, 0x6b], &tracks.concat());
        let cluster = [&[0x1f, 0x43, 0xb6, 0x75][..], &unknown, payload].concat();
        [header, vec![0x18, 0x53, 0x80, 0x67], unknown.to_vec(), tracks, cluster].concat()
    }

    #[test]
    fn a_sound_track_is_not_video_whatever_the_data_holds() {
        let file = recording(&[track(2, "A_OPUS")], b"\x86\x82V_ V_VP8 \x83\x81\x01");
        assert_eq!(holds_video(&file), Some(false));
    }

    #[test]
    fn a_video_track_is_found_by_type_or_by_codec() {
        assert_eq!(holds_video(&recording(&[track(1, "V_VP8")], b"")), Some(true));
        assert_eq!(
            holds_video(&recording(&[track(2, "A_OPUS"), track(1, "V_VP9")], b"")),
            Some(true)
        );
        assert_eq!(holds_video(&recording(&[track(1, "X_NEW")], b"")), Some(true));
    }

    #[test]
    fn a_cut_or_broken_track_list_is_undecided() {
        let file = recording(&[track(2, "A_OPUS"), track(1, "V_VP8")], b"");
        let tracks_start = file.windows(4).position(|w| w == [0x16, 0x54, 0xae, 0x6b]);
        let cut = tracks_start.expect("tracks in the file") + 10;
        assert_eq!(holds_video(&file[..cut]), None);
        assert_eq!(holds_video(b"\x1a\x45\xdf\xa3\x00"), None, "no size marker");
        assert_eq!(holds_video(b""), None);
    }

    #[test]
    fn sizes_read_with_their_length_and_unknown_sizes_are_told() {
        assert_eq!(element_size(&[0x81]), Some((Some(1), 1)));
        assert_eq!(element_size(&[0x40, 0x02]), Some((Some(2), 2)));
        assert_eq!(element_size(&[0xff]), Some((None, 1)));
        assert_eq!(
            element_size(&[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Some((None, 8))
        );
        assert_eq!(element_id(&[0x1a, 0x45, 0xdf, 0xa3]), Some((0x1a45_dfa3, 4)));
    }
}
