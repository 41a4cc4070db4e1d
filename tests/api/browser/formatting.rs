//! Rich text in the browser: what people type in Slack or Discord style shows as elements in
//! the other person's window, hostile text stays text, code blocks copy, the composer's
//! formatting help opens, and its buttons are SVG icons. The parser itself (web/js/format.js)
//! is tested in the page by importing the module as the client does.

use fantoccini::key::Key;
use serde_json::{Value, json};

use super::chat::{DESKTOP, PHONE, two_in_a_dm};
use super::{Browser, Driver, driver};
use crate::support::{TestApp, spawn_app_as_shipped};

/// A JavaScript function that writes a node's children as a compact string: elements as
/// `<tag>…</tag>` with no attributes, text as it is with `<` written `&lt;` (so text that
/// looks like markup cannot pass for an element).
const SHAPE: &str = "const shape = (node) => [...node.childNodes].map((n) => n.nodeType === 3 \
    ? n.data.replaceAll('<', '&lt;') \
    : `<${n.localName}>${shape(n)}</${n.localName}>`).join('');";

impl Browser {
    /// The shape (see `SHAPE`) of the body of the message with this id, once it shows.
    async fn body_shape(&self, id: &str) -> String {
        let body = format!("document.querySelector(\".message[data-id='{id}'] .body\")");
        self.until(&format!("message {id}"), &body).await;
        let value = self.eval_block(&format!("{SHAPE} return shape({body});")).await;
        value.as_str().expect("a string").to_owned()
    }

    /// Runs statements (ending in a `return`) in the page; `eval` takes an expression.
    async fn eval_block(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script runs")
    }
}

fn id_of(message: &Value) -> String {
    message["id"].as_str().expect("message id").to_owned()
}

#[tokio::test]
async fn every_construct_shows_as_elements_in_the_other_browser() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    alice.open_room(&room).await;
    bob.open_room(&room).await;

    // Typed in the composer: every inline construct on one line.
    let typed = "*bold* **bolder** _it_ ~gone~ ~~gone too~~ `x*y*` @bob www.example.com, \
                 https://example.com/a_b_c. mailto:a@example.com";
    alice.say(typed).await;
    bob.shows_message(
        "bold bolder it gone gone too x*y* @bob www.example.com, https://example.com/a_b_c. mailto:a@example.com",
    )
    .await;
    let id = bob
        .eval(
            "[...document.querySelectorAll('.message')].find((m) => m.querySelector('.body')?.textContent.startsWith('bold bolder')).dataset.id",
        )
        .await;
    let id = id.as_str().expect("an id");
    assert_eq!(
        bob.body_shape(id).await,
        "<strong>bold</strong> <strong>bolder</strong> <em>it</em> <s>gone</s> <s>gone too</s> \
         <code>x*y*</code> <span>@bob</span> <a>www.example.com</a>, \
         <a>https://example.com/a_b_c</a>. <a>mailto:a@example.com</a>"
    );
    let body = format!(".message[data-id='{id}'] .body");
    assert_eq!(
        bob.eval(&format!(
            "[...document.querySelectorAll(\"{body} a\")].map((a) => [a.getAttribute('href'), a.target, a.rel])"
        ))
        .await,
        json!([
            ["https://www.example.com", "_blank", "noopener noreferrer"],
            ["https://example.com/a_b_c", "_blank", "noopener noreferrer"],
            ["mailto:a@example.com", "_blank", "noopener noreferrer"],
        ])
    );
    assert_eq!(
        bob.eval(&format!("document.querySelector(\"{body} .mention\").className")).await,
        "mention me"
    );
    // The stored body is the text as typed.
    let history = app.whole_history(&alice_user, &room).await;
    assert_eq!(history.last().expect("a message")["body"], typed);

    // Lines typed with Shift+Enter make blocks (a modifier key is held until the Null key).
    let shift: char = Key::Shift.into();
    let enter: char = Key::Enter.into();
    let release: char = Key::Null.into();
    alice.say(&format!("> typed *quote*{shift}{enter}{release}- typed item")).await;
    bob.shows_message("typed quotetyped item").await;
    let typed_blocks = bob
        .eval(
            "[...document.querySelectorAll('.message')].find((m) => m.querySelector('.body')?.textContent === 'typed quotetyped item').dataset.id",
        )
        .await;
    assert_eq!(
        bob.body_shape(typed_blocks.as_str().expect("an id")).await,
        "<blockquote>typed <strong>quote</strong></blockquote><ul><li>typed item</li></ul>"
    );

    // Blocks, sent over HTTP as another client would.
    let blocks = app
        .send(
            &alice_user,
            &room,
            "Steps:\n```rust\nfn main() {\n    println!(\"*not bold* _nor italic_\");\n}\n```\n\
             > quoted *bold*\n> second line\n- one\n* two _it_\n3. three\n4. four\ndone",
        )
        .await;
    let blocks = id_of(&blocks);
    assert_eq!(
        bob.body_shape(&blocks).await,
        "Steps:<div><div><span>rust</span><button>Copy</button></div>\
         <pre><code>fn main() {\n    println!(\"*not bold* _nor italic_\");\n}</code></pre></div>\
         <blockquote>quoted <strong>bold</strong>\nsecond line</blockquote>\
         <ul><li>one</li><li>two <em>it</em></li></ul><ol><li>three</li><li>four</li></ol>done"
    );
    let body = format!(".message[data-id='{blocks}'] .body");
    assert_eq!(
        bob.eval(&format!("document.querySelector(\"{body} ol\").getAttribute('start')")).await,
        "3"
    );
    // The code block is monospace and scrolls sideways rather than wrapping.
    let pre = bob
        .eval(&format!(
            "(() => {{ const s = getComputedStyle(document.querySelector(\"{body} pre\")); \
             return [s.whiteSpace, s.overflowX, /mono/i.test(s.fontFamily)]; }})()"
        ))
        .await;
    assert_eq!(pre, json!(["pre", "auto", true]));

    // What only looks like markers stays plain text.
    let plain =
        "snake_case_names, 2*3*4, a * b * c, __init__, ~5 to ~10 and https://x.example/a_b_";
    let plain = id_of(&app.send(&alice_user, &room, plain).await);
    assert_eq!(
        bob.body_shape(&plain).await,
        "snake_case_names, 2*3*4, a * b * c, __init__, ~5 to ~10 and <a>https://x.example/a_b</a>_"
    );
    bob.eval(&format!("document.querySelector(\".message[data-id='{blocks}']\").scrollIntoView()"))
        .await;
    bob.screenshot("desktop-rich-text").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn a_hostile_body_shows_as_text_and_creates_no_element() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, bob, alice_user, _, room) = two_in_a_dm(&app, &mut driver).await;
    bob.open_room(&room).await;
    let bodies = [
        "<img src=x onerror=\"window.pwned = 1\">",
        "[x](javascript:alert(1)) and javascript:alert(2)",
        "**<script>window.pwned = 3</script>**",
        "*<b onclick=alert(4)>hi</b>*",
        "https://ok.example/\"><img src=x onerror=\"window.pwned = 5\">",
        "```\n</code></pre><img src=x onerror=\"window.pwned = 6\">\n```",
        "> <iframe src=\"javascript:alert(7)\"></iframe>",
    ];
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(id_of(&app.send(&alice_user, &room, body).await));
    }
    let shapes = [
        "&lt;img src=x onerror=\"window.pwned = 1\">",
        "[x](javascript:alert(1)) and javascript:alert(2)",
        "<strong>&lt;script>window.pwned = 3&lt;/script></strong>",
        "<strong>&lt;b onclick=alert(4)>hi&lt;/b></strong>",
        "<a>https://ok.example/</a>\">&lt;img src=x onerror=\"window.pwned = 5\">",
        "<div><div><button>Copy</button></div><pre><code>&lt;/code>&lt;/pre>&lt;img src=x onerror=\"window.pwned = 6\"></code></pre></div>",
        "<blockquote>&lt;iframe src=\"javascript:alert(7)\">&lt;/iframe></blockquote>",
    ];
    for (id, shape) in ids.iter().zip(shapes) {
        // `<` is escaped only in text: an element made from the body would show as one.
        assert_eq!(bob.body_shape(id).await, shape);
    }
    let found = bob
        .eval(
            "(() => { const bodies = [...document.querySelectorAll('.message .body')]; \
             return { elements: bodies.flatMap((b) => [...b.querySelectorAll('img, script, iframe, b, [onclick], [onerror]')]).length, \
             hrefs: bodies.flatMap((b) => [...b.querySelectorAll('a')].map((a) => a.protocol)), \
             pwned: window.pwned ?? null }; })()",
        )
        .await;
    assert_eq!(found, json!({ "elements": 0, "hrefs": ["https:"], "pwned": null }));
    alice.close().await;
    bob.close().await;
}

/// Lets the page read and write the clipboard without asking (WebDriver's Set Permission,
/// which chromedriver implements), so that the test can read back what was copied.
async fn grant_clipboard(driver: &Driver, browser: &Browser) {
    let session = browser.client.session_id().await.expect("session").expect("a session id");
    let http = reqwest::Client::new();
    for name in ["clipboard-read", "clipboard-write"] {
        let response = http
            .post(format!("{}/session/{session}/permissions", driver.url))
            .json(&json!({ "descriptor": { "name": name }, "state": "granted" }))
            .send()
            .await
            .expect("chromedriver answers");
        assert!(response.status().is_success(), "set permission {name}: {}", response.status());
    }
}

async fn alice_alone(
    app: &TestApp,
    driver: &mut Driver,
) -> (Browser, crate::support::TestUser, String) {
    let alice = app.register_displayed("alice", "Alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let room = app.open_dm(&alice, &bob).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(app, &alice).await;
    (page, alice, room)
}

#[tokio::test]
async fn a_code_block_s_copy_button_copies_its_text() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, alice_user, room) = alice_alone(&app, &mut driver).await;
    grant_clipboard(&driver, &alice).await;
    let code = "cargo test --test api\n  -- browser::formatting";
    let id = id_of(&app.send(&alice_user, &room, &format!("Run:\n```sh\n{code}\n```")).await);
    alice.open_room(&room).await;
    let copy = format!(".message[data-id='{id}'] .fmt-copy");
    alice.find(&copy).await;
    assert_eq!(alice.text(&copy).await, "Copy");
    alice.click(&copy).await;
    alice
        .until(
            "the button says Copied",
            &format!("document.querySelector(\"{copy}\")?.textContent === 'Copied'"),
        )
        .await;
    let copied = alice
        .client
        .execute_async("const done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, (e) => done('refused: ' + e));", vec![])
        .await
        .expect("script runs");
    assert_eq!(copied, code);
    alice.screenshot("desktop-code-block-copied").await;

    // The button comes back; when the clipboard refuses, the code is selected for Ctrl+C.
    alice
        .until(
            "the button back to Copy",
            &format!("document.querySelector(\"{copy}\")?.textContent === 'Copy'"),
        )
        .await;
    alice
        .eval("navigator.clipboard.writeText = () => Promise.reject(new DOMException('refused', 'NotAllowedError'))")
        .await;
    alice.click(&copy).await;
    alice
        .until(
            "the button says Press Ctrl+C",
            &format!("document.querySelector(\"{copy}\")?.textContent === 'Press Ctrl+C'"),
        )
        .await;
    assert_eq!(alice.eval("getSelection().toString()").await, code);
    alice.close().await;
}

#[tokio::test]
async fn the_composer_shows_svg_icons_and_opens_its_formatting_help() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let (alice, _, room) = alice_alone(&app, &mut driver).await;
    alice.open_room(&room).await;

    // Each button is an SVG drawn in the text colour, hidden from screen readers, and keeps
    // its name; nothing in the composer depends on an emoji font.
    let buttons = alice
        .eval(
            "[...document.querySelectorAll('.composer-row > button, .format-help-anchor > button')].map((b) => { \
               const svg = b.querySelector('svg'); const box = svg?.getBoundingClientRect(); \
               return [b.getAttribute('aria-label') || b.textContent.trim(), !!svg && svg.namespaceURI === 'http://www.w3.org/2000/svg', \
                 svg?.getAttribute('aria-hidden') ?? null, svg ? getComputedStyle(svg).stroke === getComputedStyle(b).color : null, \
                 !!box && box.width > 8 && box.height > 8]; })",
        )
        .await;
    let expected = json!([
        ["Attach files", true, "true", true, true],
        ["Record a voice message", true, "true", true, true],
        ["Insert emoji", true, "true", true, true],
        ["Formatting help", false, null, null, false],
        ["Send", true, "true", true, true],
    ]);
    assert_eq!(buttons, expected);
    let labels = alice
        .eval("[...document.querySelectorAll('.composer-row > button, .format-help-anchor > button')].map((b) => b.textContent).join('')")
        .await;
    let labels = labels.as_str().expect("text");
    assert!(labels.is_ascii(), "no emoji or symbol characters on the buttons: {labels:?}");

    // The help opens from the keyboard, lists the syntax with its result, and Escape closes
    // it, leaving the focus on its button.
    let toggle = "[data-testid=format-help-toggle]";
    let panel = "[data-testid=format-help]";
    assert_eq!(alice.eval(&format!("document.querySelector('{panel}').hidden")).await, true);
    alice.eval(&format!("document.querySelector('{toggle}').focus()")).await;
    alice.press(Key::Enter).await;
    alice
        .until("the help open", &format!("document.querySelector('{panel}').offsetHeight > 0"))
        .await;
    assert_eq!(
        alice
            .eval(&format!("document.querySelector('{toggle}').getAttribute('aria-expanded')"))
            .await,
        "true"
    );
    let rows = alice
        .eval_block(&format!(
            "{SHAPE} return [...document.querySelectorAll('{panel} tbody tr')].slice(0, 4).map((r) => [r.cells[0].textContent, shape(r.cells[1])]);"
        ))
        .await;
    assert_eq!(
        rows,
        json!([
            ["*bold* or **bold**", "<strong>bold</strong> or <strong>bold</strong>"],
            ["_italic_", "<em>italic</em>"],
            ["~strike~", "<s>strike</s>"],
            ["`code`", "<code>code</code>"],
        ])
    );
    alice.screenshot("desktop-formatting-help").await;
    alice.press(Key::Escape).await;
    alice.until("the help closed", &format!("document.querySelector('{panel}').hidden")).await;
    assert_eq!(alice.eval(&format!("document.activeElement.matches('{toggle}')")).await, true);
    assert_eq!(
        alice
            .eval(&format!("document.querySelector('{toggle}').getAttribute('aria-expanded')"))
            .await,
        "false"
    );

    // A click elsewhere closes it too.
    alice.click(toggle).await;
    alice.until("the help open again", &format!("!document.querySelector('{panel}').hidden")).await;
    alice.click("[data-testid=composer]").await;
    alice
        .until(
            "the help closed by a click elsewhere",
            &format!("document.querySelector('{panel}').hidden"),
        )
        .await;

    // On a phone the help fits the screen, and Send is its icon alone.
    alice.client.set_window_size(PHONE.0, PHONE.1).await.expect("resize");
    alice.until("the phone layout", &format!("innerWidth <= {}", PHONE.0)).await;
    alice.click(toggle).await;
    alice
        .until(
            "the help open on a phone",
            &format!("document.querySelector('{panel}').offsetHeight > 0"),
        )
        .await;
    let fits = alice
        .eval(&format!(
            "(() => {{ const r = document.querySelector('{panel}').getBoundingClientRect(); \
             return r.left >= 0 && r.right <= innerWidth && r.top >= 0; }})()"
        ))
        .await;
    assert_eq!(fits, true, "the help fits a phone's screen");
    assert_eq!(
        alice.eval("document.querySelector('.composer .send .label').getBoundingClientRect().width <= 1").await,
        true
    );
    alice.screenshot("phone-formatting-help").await;
    alice.close().await;
}

/// A JavaScript function writing format.js's tree compactly: inlines as `<bold>…</bold>`,
/// `<code>…</code>`, `<a href>text</a>`, `<@name>`; blocks as paragraphs' lines, `<pre lang>`,
/// `<quote>`, `<ul>`, `<ol start>` (start shown when not 1), separated by `|`.
const TREE: &str = "const inl = (nodes) => nodes.map((n) => n.type === 'text' ? n.text \
    : n.type === 'code' ? `<code>${n.text}</code>` \
    : n.type === 'link' ? `<a ${n.href}>${n.text}</a>` \
    : n.type === 'mention' ? `<@${n.username}>` \
    : `<${n.type}>${inl(n.children)}</${n.type}>`).join(''); \
  const blk = (blocks) => blocks.map((b) => b.type === 'paragraph' ? b.lines.map(inl).join('\\n') \
    : b.type === 'code_block' ? `<pre${b.language ? ' ' + b.language : ''}>${b.text}</pre>` \
    : b.type === 'quote' ? `<quote>${blk(b.children)}</quote>` \
    : b.ordered ? `<ol${b.start !== 1 ? ' ' + b.start : ''}>${b.items.map((i) => `<li>${inl(i)}</li>`).join('')}</ol>` \
    : `<ul>${b.items.map((i) => `<li>${inl(i)}</li>`).join('')}</ul>`).join('|');";

/// What is typed, and the tree it must parse to (known people: bob and al.ice).
const PARSER_CASES: &[(&str, &str)] = &[
    ("*bold*", "<bold>bold</bold>"),
    ("**bold**", "<bold>bold</bold>"),
    ("_it_ and ~s~ ~~s2~~", "<italic>it</italic> and <strike>s</strike> <strike>s2</strike>"),
    // Markers inside words, beside spaces, unclosed, unmatched or of other lengths are text.
    ("snake_case_names", "snake_case_names"),
    ("2*3*4", "2*3*4"),
    ("a * b * c", "a * b * c"),
    ("x*y* and foo_bar_", "x*y* and foo_bar_"),
    ("*not closed", "*not closed"),
    ("**mismatched*", "**mismatched*"),
    ("***x***", "***x***"),
    ("__init__", "__init__"),
    ("~5 min or ~10", "~5 min or ~10"),
    // Markers pair like brackets, never crossing; punctuation is a word boundary.
    ("*a _b* c_", "<bold>a _b</bold> c_"),
    ("(*in parens*),", "(<bold>in parens</bold>),"),
    ("*a *b* c*", "<bold>a <bold>b</bold> c</bold>"),
    // Nothing is formatted inside code; code may sit inside formatting.
    ("`*code* _x_`", "<code>*code* _x_</code>"),
    ("``a`b``", "<code>a`b</code>"),
    ("*bold `code` bold*", "<bold>bold <code>code</code> bold</bold>"),
    // Nothing inline spans lines.
    ("*one\ntwo*", "*one\ntwo*"),
    ("a\n\nb", "a\n\nb"),
    // Links: underscores stay in them, final punctuation stays out, balanced parentheses in.
    (
        "see https://example.com/a_b_c_d.",
        "see <a https://example.com/a_b_c_d>https://example.com/a_b_c_d</a>.",
    ),
    (
        "_https://example.com/x_",
        "<italic><a https://example.com/x>https://example.com/x</a></italic>",
    ),
    (
        "(https://en.wikipedia.org/wiki/Rust_(language))",
        "(<a https://en.wikipedia.org/wiki/Rust_(language)>https://en.wikipedia.org/wiki/Rust_(language)</a>)",
    ),
    (
        "www.example.com/path?q=1!",
        "<a https://www.example.com/path?q=1>www.example.com/path?q=1</a>!",
    ),
    ("mailto:team@example.com", "<a mailto:team@example.com>mailto:team@example.com</a>"),
    (
        "javascript:alert(1) [x](javascript:alert(1)) ftp://x.example data:text/html,x",
        "javascript:alert(1) [x](javascript:alert(1)) ftp://x.example data:text/html,x",
    ),
    // Mentions of known people only, lower-cased, without a final dot.
    ("hi @Bob and @carol, @al.ice.", "hi <@bob> and @carol, <@al.ice>."),
    ("*@bob*", "<bold><@bob></bold>"),
    // Code blocks: a language, kept indentation and blank lines, no formatting inside.
    ("```js\nlet a = *b*;\n```", "<pre js>let a = *b*;</pre>"),
    ("```\n  indented\n\n_kept_\n```", "<pre>  indented\n\n_kept_</pre>"),
    ("```one line```", "<pre>one line</pre>"),
    ("```first line\nlast line```", "<pre>first line\nlast line</pre>"),
    ("```never closed\n*b*", "```never closed\n<bold>b</bold>"),
    // Quotes, lists, and the paragraphs around them.
    ("> quote *b*\n> more\nafter", "<quote>quote <bold>b</bold>\nmore</quote>|after"),
    (">not a quote", ">not a quote"),
    ("> > not nested", "<quote>> not nested</quote>"),
    ("- a\n* b\n\n1. c\n2. d", "<ul><li>a</li><li>b</li></ul>|<ol><li>c</li><li>d</li></ol>"),
    ("5. five\n6. six", "<ol 5><li>five</li><li>six</li></ol>"),
    ("intro\n- item", "intro|<ul><li>item</li></ul>"),
    // Lines ended the Windows way too.
    ("> a\r\n> b\r\nc", "<quote>a\nb</quote>|c"),
];

#[tokio::test]
async fn the_parser_builds_the_tree_each_construct_asks_for() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.open(&app).await;
    page.find("#auth-username").await;
    let typed: Vec<&str> = PARSER_CASES.iter().map(|(typed, _)| *typed).collect();
    let parsed = with_module(
        &page,
        "format.js",
        &format!(
            "(format) => {{ {TREE} return {cases}.map((text) => blk(format.parse(text, new Set(['bob', 'al.ice'])).children)); }}",
            cases = json!(typed)
        ),
    )
    .await;
    let parsed = parsed.as_array().unwrap_or_else(|| panic!("a list: {parsed}"));
    let wrong: Vec<String> = PARSER_CASES
        .iter()
        .zip(parsed)
        .filter(|((_, expected), actual)| actual.as_str() != Some(expected))
        .map(|((typed, expected), actual)| {
            format!("{typed:?}\n  expected {expected:?}\n  got      {actual}")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        PARSER_CASES.len(),
        wrong.join("\n")
    );
    assert_eq!(parsed.len(), PARSER_CASES.len());
    page.close().await;
}

/// Imports a module of the web client in `page`, from where the page's own scripts come
/// from, and runs `body` (a function of the module, returning JSON) in the page; its result.
async fn with_module(page: &Browser, module: &str, body: &str) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1]; \
         const base = document.querySelector('script[type=module]').src.replace(/main\\.js$/, ''); \
         import(base + {module}).then((module) => done(({body})(module)), (error) => done('import failed: ' + error));",
        module = json!(module)
    );
    page.client.execute_async(&script, vec![]).await.expect("script runs")
}

#[tokio::test]
async fn the_renderer_refuses_unsafe_links_and_every_icon_draws() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app_as_shipped().await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.open(&app).await;
    page.find("#auth-username").await;

    // A tree built by hand (not by the parser) with a link to a script: the renderer checks
    // the address again and makes it text.
    let rendered = with_module(
        &page,
        "format.js",
        "(format) => { \
           const tree = { type: 'root', children: [{ type: 'paragraph', lines: [[ \
             { type: 'link', href: 'javascript:alert(1)', text: 'a' }, \
             { type: 'link', href: ' JavaScript:alert(1)', text: 'b' }, \
             { type: 'link', href: 'data:text/html,x', text: 'c' }, \
             { type: 'link', href: 'https://ok.example/', text: 'd' }, \
             { type: 'link', href: 'mailto:a@ok.example', text: 'e' }]] }] }; \
           return format.render(tree, null).map((n) => n.nodeType === 3 ? n.data : n.localName + ' ' + n.getAttribute('href')); }",
    )
    .await;
    assert_eq!(rendered, json!(["a", "b", "c", "a https://ok.example/", "a mailto:a@ok.example"]));

    // Every icon the views use exists, draws something, and is hidden from screen readers.
    let names = [
        "attach", "mic", "stop", "send", "reply", "smile", "edit", "trash", "menu", "close",
        "copy", "check", "search", "bell",
    ];
    let icons = with_module(
        &page,
        "icons.js",
        &format!(
            "(icons) => {names}.map((name) => {{ \
               if (!icons.ICONS.includes(name)) return name + ' missing'; \
               const svg = icons.icon(name); document.body.append(svg); \
               const box = svg.getBBox(); svg.remove(); \
               return [svg.namespaceURI, svg.getAttribute('aria-hidden'), svg.getAttribute('stroke'), svg.childElementCount > 0 && box.width > 0 && box.height > 0]; }})",
            names = json!(names)
        ),
    )
    .await;
    let expected: Vec<Value> = names
        .iter()
        .map(|_| json!(["http://www.w3.org/2000/svg", "true", "currentColor", true]))
        .collect();
    assert_eq!(icons, json!(expected));
    let unknown = with_module(&page, "icons.js", "(icons) => { try { icons.icon('nope'); return 'drawn'; } catch (e) { return 'refused'; } }").await;
    assert_eq!(unknown, "refused");
    page.close().await;
}
