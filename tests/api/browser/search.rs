//! Message search in the web client: results as you type, with their matches marked and
//! only from one's own rooms; a result far back in a long room opens there with its
//! neighbours, and scrolling from it reaches the beginning and the newest with no gap and
//! no repeat; the keyboard opens, drives and closes it; searching too fast waits as the
//! server says; and it fits a phone.

use fantoccini::key::Key;
use serde_json::json;

use super::big_room::{SHOWN, seed};
use super::chat::{DESKTOP, PHONE};
use super::reading::read_seq;
use super::{Browser, driver};
use crate::support::spawn_app;

/// The results shown, each as [room id, snippet text, marked texts, room label, author].
const RESULTS: &str = "[...document.querySelectorAll('[data-testid=search-result]')].map(r => [
  r.dataset.room, r.querySelector('.search-snippet').textContent,
  [...r.querySelectorAll('mark')].map(m => m.textContent),
  r.querySelector('.search-room').textContent, r.querySelector('.search-author').textContent])";

impl Browser {
    /// Replaces what the search box holds with `query`, typed.
    async fn search_for(&self, query: &str) {
        // The box is typed into once it is shown (on a phone the dialog slides in).
        self.until(
            "the search box shown",
            "(() => { const box = document.querySelector('[data-testid=search-input]'); \
             return !!box && box.getClientRects().length > 0 \
             && getComputedStyle(box).visibility === 'visible' && !box.disabled; })()",
        )
        .await;
        let select_all = format!("{}a{}", char::from(Key::Control), char::from(Key::Null));
        self.type_into("[data-testid=search-input]", &format!("{select_all}{query}")).await;
    }

    /// Waits until the results are exactly `expected` (as `RESULTS` gives them).
    async fn shows_results(&self, what: &str, expected: serde_json::Value) {
        self.until(what, &format!("JSON.stringify({RESULTS}) === {}", json!(expected.to_string())))
            .await;
    }

    /// Whether the message of `seq` is in the list and wholly in its view.
    async fn in_view(&self, seq: i64) -> bool {
        let script = format!(
            "(() => {{ const m = document.querySelector('.message[data-seq=\"{seq}\"]'); if (!m) return false; \
             const l = document.querySelector('.messages').getBoundingClientRect(); const r = m.getBoundingClientRect(); \
             return r.top >= l.top && r.bottom <= l.bottom; }})()"
        );
        self.eval(&script).await == json!(true)
    }
}

#[tokio::test]
async fn typing_shows_matches_marked_from_one_s_own_rooms_only() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let carol = app.register_displayed("carol", "Carol").await;
    let group = app.create_room(&alice, "kyoto", "private", &[&bob]).await;
    app.send(&bob, &group, "We met in 東京都 last spring").await;
    app.send(&alice, &group, "permission granted for the deploy").await;
    app.send(&bob, &group, "nothing to see here").await;
    // Rooms Alice is not in, one of them public: never searched.
    let hidden = app.create_room(&carol, "hidden", "private", &[]).await;
    app.send(&carol, &hidden, "permission denied in secret").await;
    let plaza = app.create_room(&carol, "plaza", "public", &[]).await;
    app.send(&carol, &plaza, "permission for everyone in public").await;
    let dm = app.open_dm(&bob, &alice).await;
    app.send(&bob, &dm, "Permissions are sorted, see the wiki").await;

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.click("[data-testid=open-search]").await;
    page.until(
        "the box has the focus",
        "document.activeElement?.dataset.testid === 'search-input'",
    )
    .await;

    // A part of a word: both of Alice's messages that hold it, newest first, labelled by
    // room (the DM by the other person's name) and author, with the part marked.
    page.search_for("perm").await;
    page.shows_results(
        "the two matches of perm",
        json!([
            [dm, "Permissions are sorted, see the wiki", ["Perm"], "Bob", "Bob"],
            [group, "permission granted for the deploy", ["perm"], "kyoto", "Alice"],
        ]),
    )
    .await;
    page.until(
        "the count is said",
        "document.querySelector('[data-testid=search-status]').textContent === '2 messages.'",
    )
    .await;
    page.screenshot("desktop-search-results").await;

    // One CJK character, within a word.
    page.search_for("京").await;
    page.shows_results(
        "the match of 京",
        json!([[group, "We met in 東京都 last spring", ["京"], "kyoto", "Bob"]]),
    )
    .await;

    // Nothing matches: it says so.
    page.search_for("zebra").await;
    page.shows_results("no results", json!([])).await;
    page.until(
        "no results is said",
        "document.querySelector('[data-testid=search-status]').dataset.state === 'empty'",
    )
    .await;
    let hidden_or_plaza = format!(
        "[...document.querySelectorAll('[data-room]')].some(e => e.dataset.room === '{hidden}' || e.dataset.room === '{plaza}')"
    );
    assert_eq!(page.eval(&hidden_or_plaza).await, json!(false), "nothing from others' rooms");
    page.close().await;
}

/// Message 30 of 600, written by Bob and unread by Alice: opening it from search shows it
/// highlighted among its neighbours; the newest messages, and one that arrives meanwhile,
/// do not show beside it. Scrolling up reaches the beginning, scrolling down the newest,
/// with no gap and no repeat at any step; reading it marks nothing later read.
#[tokio::test]
async fn a_result_far_back_opens_among_its_neighbours_and_scrolls_to_both_ends() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.create_room(&bob, "archive", "private", &[&alice]).await;
    let before = seed(&app, &bob, &room, 30).await;
    let needle = app.send(&bob, &room, "a needle in the haystack").await;
    let needle_seq = needle["seq"].as_i64().expect("seq");
    seed(&app, &bob, &room, 569).await;
    // Alice's page opens another room by itself, the one with the latest message.
    let other = app.create_room(&bob, "elsewhere", "private", &[&alice]).await;
    app.send(&bob, &other, "over here").await;

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.shows_message("over here").await;
    page.click("[data-testid=open-search]").await;
    page.search_for("needl").await;
    page.shows_results(
        "the needle",
        json!([[room, "a needle in the haystack", ["needl"], "archive", "Bob"]]),
    )
    .await;
    page.click("[data-testid=search-result]").await;

    // It shows, highlighted and in view, with its neighbours on both sides.
    page.until(
        "the needle highlighted",
        &format!("document.querySelector('.message.found[data-seq=\"{needle_seq}\"]')"),
    )
    .await;
    assert!(page.in_view(needle_seq).await, "the needle is in view");
    page.until(
        "its neighbours",
        &format!(
            "document.querySelector('.message[data-seq=\"{}\"]') && document.querySelector('.message[data-seq=\"{}\"]')",
            needle_seq - 1,
            needle_seq + 1
        ),
    )
    .await;
    assert_eq!(page.eval(&format!("{SHOWN}.inOrder")).await, json!(true));
    page.screenshot("desktop-search-far-back").await;

    // A message arriving now goes to the newest, not beside the needle.
    let late = app.send(&bob, &room, "while you were far back").await;
    let late_seq = late["seq"].as_i64().expect("seq");
    page.until(
        "the badge counts it",
        &format!("document.querySelector(\".room-item[data-room='{room}'] [data-testid=unread]\")"),
    )
    .await;
    assert_eq!(page.eval(&format!("{SHOWN}.inOrder")).await, json!(true), "nothing out of place");
    page.find(".new-messages:not([hidden])").await;

    // Reading far back marks read only up to what is in the page, and the rest still
    // counts as unread.
    let newest_held = page.eval(&format!("{SHOWN}.last")).await.as_i64().expect("last");
    let read = read_seq(&app, &bob, &room, &alice).await;
    assert!(read <= newest_held, "read only what showed: {read}, the page up to {newest_held}");
    let badge = format!(".room-item[data-room='{room}'] [data-testid=unread]");
    let unread: i64 = page.text(&badge).await.parse().expect("a count");
    assert!(unread > 400, "the rest is unread: {unread}");

    let top = page.scroll_through(true, before[0].0).await;
    assert!(top["count"].as_i64().expect("count") > 0, "the beginning: {top}");
    page.until(
        "the beginning of the room",
        "document.querySelector('.messages .loading-older')?.textContent.startsWith('This is the beginning')",
    )
    .await;
    let bottom = page.scroll_through(false, late_seq).await;
    assert_eq!(bottom["inOrder"], json!(true), "no gap, no repeat: {bottom}");
    page.shows_message("while you were far back").await;
    let late_shown = "[...document.querySelectorAll('.message .body')]\
                      .filter(b => b.textContent === 'while you were far back').length === 1";
    assert_eq!(page.eval(late_shown).await, json!(true), "once");

    // At the newest, the room is live again: a new message shows at the bottom, next in line.
    let next = app.send(&bob, &room, "back at the present").await;
    page.shows_message("back at the present").await;
    let shown = page.eval(SHOWN).await;
    assert_eq!(shown["last"], next["seq"], "at the bottom: {shown}");
    assert_eq!(shown["inOrder"], json!(true), "no gap, no repeat: {shown}");
    page.close().await;
}

/// Opened far back, then elsewhere far back in the same room (the first run is let go),
/// then left for the newest: scrolling up from the newest fills the gap down to the
/// second result and on to the beginning, with no gap and no repeat.
#[tokio::test]
async fn from_the_newest_scrolling_up_reaches_a_result_opened_far_back_with_no_gap() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "archive", "private", &[]).await;
    let first = seed(&app, &alice, &room, 30).await;
    let needle = app.send(&alice, &room, "a needle in the haystack").await;
    seed(&app, &alice, &room, 200).await;
    let thimble = app.send(&alice, &room, "a thimble in the middle").await;
    let last = seed(&app, &alice, &room, 200).await;
    let (needle_seq, thimble_seq) =
        (needle["seq"].as_i64().expect("seq"), thimble["seq"].as_i64().expect("seq"));

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.shows_message(&last[last.len() - 1].1).await;
    for (query, seq) in [("needle", needle_seq), ("thimble", thimble_seq)] {
        page.click("[data-testid=open-search]").await;
        page.search_for(query).await;
        page.until(
            "one result",
            &format!(
                "document.querySelector('[data-testid=search-result]')?.dataset.seq === '{seq}'"
            ),
        )
        .await;
        page.click("[data-testid=search-result]").await;
        page.until(
            "the result highlighted",
            &format!("document.querySelector('.message.found[data-seq=\"{seq}\"]')"),
        )
        .await;
        assert_eq!(page.eval(&format!("{SHOWN}.inOrder")).await, json!(true));
    }
    let needle_shown = format!("document.querySelector('.message[data-seq=\"{needle_seq}\"]')");
    assert_eq!(page.eval(&format!("!{needle_shown}")).await, json!(true), "not beside the thimble");

    page.click(".new-messages").await;
    page.until(
        "at the newest",
        &format!(
            "{SHOWN}.last === {} && document.querySelector('.new-messages').hidden",
            last[last.len() - 1].0
        ),
    )
    .await;
    page.scroll_through(true, first[0].0).await;
    page.scroll_through(false, last[last.len() - 1].0).await;
    page.close().await;
}

#[tokio::test]
async fn the_search_opens_from_the_keyboard_and_is_driven_by_it() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "orchard", "private", &[]).await;
    let older = app.send(&alice, &room, "green apples first").await;
    app.send(&alice, &room, "then pears").await;
    app.send(&alice, &room, "red apples later").await;

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.shows_message("red apples later").await;
    page.until(
        "the composer has the focus",
        "document.activeElement?.dataset.testid === 'composer'",
    )
    .await;

    // Ctrl-K, even from the composer; Escape closes it and gives the focus back.
    page.keys(&format!("{}k{}", char::from(Key::Control), char::from(Key::Null))).await;
    page.until("the search is open", "document.querySelector('[data-testid=search]').open").await;
    page.until(
        "the box has the focus",
        "document.activeElement?.dataset.testid === 'search-input'",
    )
    .await;
    page.press(Key::Escape).await;
    page.until("the search is closed", "!document.querySelector('[data-testid=search]').open")
        .await;
    page.until(
        "the composer has the focus back",
        "document.activeElement?.dataset.testid === 'composer'",
    )
    .await;

    // "/" in the composer is a slash; outside a text field it opens the search.
    page.keys("/").await;
    page.until("a slash typed", "document.querySelector('[data-testid=composer]').value === '/'")
        .await;
    assert_eq!(
        page.eval("document.querySelector('[data-testid=search]').open").await,
        json!(false)
    );
    page.eval("document.querySelector('.messages').focus()").await;
    page.keys("/").await;
    page.until("the search is open", "document.querySelector('[data-testid=search]').open").await;

    // The arrow keys go through the results, Enter opens the one chosen.
    page.search_for("apples").await;
    page.until(
        "two results",
        "document.querySelectorAll('[data-testid=search-result]').length === 2",
    )
    .await;
    page.press(Key::Down).await;
    page.press(Key::Down).await;
    let chosen =
        "document.querySelector('[data-testid=search-result][aria-selected=true]')?.dataset.seq";
    assert_eq!(page.eval(chosen).await, json!(older["seq"].to_string()));
    page.press(Key::Up).await;
    page.press(Key::Down).await;
    page.screenshot("desktop-search-keyboard").await;
    page.press(Key::Enter).await;
    page.until("the search is closed", "!document.querySelector('[data-testid=search]').open")
        .await;
    let seq = older["seq"].as_i64().expect("seq");
    page.until(
        "the older apples highlighted, with the focus",
        &format!("document.activeElement?.matches('.message.found[data-seq=\"{seq}\"]')"),
    )
    .await;
    page.close().await;
}

/// More results than a page: scrolling the list to its end brings the next pages, each
/// message once, until there are no more.
#[tokio::test]
async fn more_results_come_as_the_list_is_scrolled() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "orchard", "private", &[]).await;
    for n in 0..45 {
        app.send(&alice, &room, &format!("apple number {n}")).await;
    }
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.click("[data-testid=open-search]").await;
    page.search_for("apple").await;
    page.until(
        "a first page",
        "document.querySelectorAll('[data-testid=search-result]').length >= 20",
    )
    .await;
    let deadline = tokio::time::Instant::now() + crate::browser::PATIENCE;
    let all = "document.querySelectorAll('[data-testid=search-result]').length === 45 \
               && document.querySelector('[data-testid=search-status]').textContent === '45 messages.'";
    while page.eval(all).await != json!(true) {
        assert!(tokio::time::Instant::now() < deadline, "never showed all 45");
        page.eval("document.querySelector('.search-scroller').scrollTop = 1e9").await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let unique = "new Set([...document.querySelectorAll('[data-testid=search-result]')].map(r => r.dataset.seq)).size";
    assert_eq!(page.eval(unique).await, json!(45), "each once");
    page.close().await;
}

/// Answers that come out of order: only the latest query's shows, whatever comes after it.
#[tokio::test]
async fn only_the_latest_query_s_answer_shows() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "orchard", "private", &[]).await;
    app.send(&alice, &room, "apples in the basket").await;
    app.send(&alice, &room, "pears on the table").await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    // The network is slow for the first query: its answer comes a second and a half late,
    // after the second query's, and even after an abort.
    page.eval(
        "(() => { const real = window.fetch; window.slowAnswered = false; \
         window.fetch = async (url, init) => { \
           const response = await real(url, init && { ...init, signal: undefined }); \
           if (!String(url).includes('q=apples')) return response; \
           const text = await response.text(); \
           await new Promise(r => setTimeout(r, 1500)); \
           setTimeout(() => { window.slowAnswered = true; }, 100); \
           return new Response(text, { status: response.status }); }; return true; })()",
    )
    .await;
    page.click("[data-testid=open-search]").await;
    page.search_for("apples").await;
    page.until(
        "the first query asked",
        "document.querySelector('[data-testid=search-status]').textContent === 'Searching…'",
    )
    .await;
    page.search_for("pears").await;
    let pears = "document.querySelectorAll('[data-testid=search-result]').length === 1 \
                 && document.querySelector('[data-testid=search-result] .search-snippet').textContent === 'pears on the table'";
    page.until("the answer to pears", pears).await;
    page.until("the late answer came", "window.slowAnswered").await;
    assert_eq!(page.eval(pears).await, json!(true), "still the answer to pears");
    page.close().await;
}

/// Searching faster than the rate: the dialog says so calmly, tries again once the server
/// says it may, and then shows the answer.
#[tokio::test]
async fn searching_too_fast_says_so_and_answers_once_it_may() {
    let Some(mut driver) = driver().await else { return };
    let app = crate::support::spawn_app_with(|settings| {
        settings.limits = confab::limits::LimitSettings::default();
        settings.limits.set(confab::limits::Action::Search, Some("1/4s".parse().expect("a rate")));
    })
    .await;
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "orchard", "private", &[]).await;
    app.send(&alice, &room, "green apples first").await;
    app.send(&alice, &room, "red apples later").await;

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;
    page.click("[data-testid=open-search]").await;
    page.search_for("apples").await;
    page.until(
        "two results",
        "document.querySelectorAll('[data-testid=search-result]').length === 2",
    )
    .await;
    page.search_for("green").await;
    page.until(
        "it says to wait",
        "document.querySelector('[data-testid=search-status]').textContent.startsWith('Searching too fast: trying again in ')",
    )
    .await;
    page.screenshot("desktop-search-rate-limited").await;
    page.until(
        "the answer once it may",
        "document.querySelectorAll('[data-testid=search-result]').length === 1 \
         && document.querySelector('[data-testid=search-status]').textContent === '1 message.'",
    )
    .await;
    page.close().await;
}

/// On a phone the search fills the screen, and a result opens its room over the room list.
#[tokio::test]
async fn the_search_fits_a_phone() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = app.register_displayed("alice", "Alice").await;
    let room = app.create_room(&alice, "Weekend hiking plans", "private", &[]).await;
    let said = app.send(&alice, &room, "Meet at the trailhead at nine, boots and water").await;
    app.send(&alice, &room, "Then lunch by the lake").await;

    let phone = driver.browser(PHONE.0, PHONE.1).await;
    phone.sign_in(&app, &alice).await;
    // The room list slides in on a phone: a click while it moves may land beside the button.
    phone.until_still().await;
    phone.click("[data-testid=open-search]").await;
    phone.search_for("trailhead").await;
    phone
        .until(
            "one result",
            "document.querySelectorAll('[data-testid=search-result]').length === 1",
        )
        .await;
    let fits = "(() => { const d = document.querySelector('[data-testid=search]').getBoundingClientRect(); \
                return d.width === window.innerWidth && d.height === window.innerHeight \
                && document.documentElement.scrollWidth <= window.innerWidth; })()";
    phone.until("the search fills the screen", fits).await;
    phone.until_still().await;
    phone.screenshot("phone-search").await;
    phone.click("[data-testid=search-result]").await;
    let seq = said["seq"].as_i64().expect("seq");
    phone
        .until(
            "the message highlighted",
            &format!("document.querySelector('.message.found[data-seq=\"{seq}\"]')"),
        )
        .await;
    phone.until("the room list closed", "!document.querySelector('.layout.sidebar-open')").await;
    phone.close().await;
}

impl Browser {
    /// Types `keys` (characters, or WebDriver's codes for keys such as Control) into
    /// whatever has the focus.
    async fn keys(&self, keys: &str) {
        let focused = self.client.active_element().await.expect("something has the focus");
        focused.send_keys(keys).await.expect("keys pressed");
    }
}
