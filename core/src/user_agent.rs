//! A compact User-Agent classifier for the `ua.*` attributes (docs/contracts.md §4). It answers three
//! coarse questions — device, browser, OS — from well-known tokens, which is what targeting
//! needs; it is not a full UA database.

/// How a User-Agent classifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAgent {
    /// `desktop`, `mobile`, `tablet`, `bot` or `other`.
    pub device: &'static str,
    /// `chrome`, `firefox`, `safari`, `edge`, `opera` or `other`.
    pub browser: &'static str,
    /// `windows`, `macos`, `linux`, `android`, `ios` or `other`.
    pub os: &'static str,
}

/// Only the start of a header is read: real User-Agents are well under this, and a huge one
/// must not cost more.
const MAX_SCANNED: usize = 512;

/// Crawler markers (lower case). `bot` alone is checked separately, as a word ending.
const CRAWLER_TOKENS: [&str; 12] = [
    "crawler",
    "spider",
    "slurp",
    "facebookexternalhit",
    "headlesschrome",
    "lighthouse",
    "prerender",
    "bingpreview",
    "mediapartners-google",
    "google-inspectiontool",
    "ia_archiver",
    "embedly",
];

/// Classifies a User-Agent header value.
pub fn parse(header: &str) -> UserAgent {
    let mut end = header.len().min(MAX_SCANNED);
    while !header.is_char_boundary(end) {
        end -= 1;
    }
    let ua = header.get(..end).unwrap_or("").to_ascii_lowercase();
    let has = |token: &str| ua.contains(token);
    let os = if has("windows") {
        "windows"
    } else if has("iphone") || has("ipad") || has("ipod") {
        "ios"
    } else if has("android") {
        "android"
    } else if has("mac os x") || has("macintosh") {
        "macos"
    } else if has("linux") || has("x11") || has("cros") {
        "linux"
    } else {
        "other"
    };
    let browser = if has("edg/") || has("edge/") || has("edga/") || has("edgios/") {
        "edge"
    } else if has("opr/") || has("opera") {
        "opera"
    } else if has("firefox/") || has("fxios/") {
        "firefox"
    } else if has("chrome/") || has("crios/") || has("chromium/") {
        "chrome"
    } else if has("safari/") && has("version/") {
        "safari"
    } else {
        "other"
    };
    let device = if is_bot(&ua) {
        "bot"
    } else if has("ipad") || has("tablet") || (has("android") && !has("mobile")) {
        "tablet"
    } else if has("mobi") || has("iphone") || has("ipod") {
        "mobile"
    } else if matches!(os, "windows" | "macos" | "linux") {
        "desktop"
    } else {
        "other"
    };
    UserAgent {
        device,
        browser,
        os,
    }
}

/// Whether a lower-cased User-Agent is a crawler: a known marker, or a product token ending
/// in `bot` (`Googlebot/2.1`, `AdsBot-Google`, `bingbot`), which phone names such as
/// `CUBOT_X19` do not match.
fn is_bot(ua: &str) -> bool {
    if CRAWLER_TOKENS.iter().any(|t| ua.contains(t)) {
        return true;
    }
    ua.match_indices("bot").any(|(at, _)| {
        let next = ua.as_bytes().get(at + 3).copied();
        matches!(next, None | Some(b'/' | b'-' | b';' | b')' | b' ' | b'+'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_browsers() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", ("desktop", "chrome", "windows")),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", ("desktop", "safari", "macos")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", ("mobile", "safari", "ios")),
            ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 Mobile/15E148 Safari/604.1", ("tablet", "chrome", "ios")),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", ("mobile", "chrome", "android")),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", ("tablet", "chrome", "android")),
            ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", ("desktop", "firefox", "linux")),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", ("desktop", "edge", "windows")),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0", ("desktop", "opera", "windows")),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ("bot", "other", "other")),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", ("bot", "chrome", "other")),
            ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", ("bot", "other", "other")),
            ("AdsBot-Google (+http://www.google.com/adsbot.html)", ("bot", "other", "other")),
            ("Mozilla/5.0 (Linux; Android 10; CUBOT_X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36", ("mobile", "chrome", "android")),
            ("curl/8.5.0", ("other", "other", "other")),
            ("", ("other", "other", "other")),
        ];
        for (ua, (device, browser, os)) in cases {
            let got = parse(ua);
            assert_eq!(
                (got.device, got.browser, got.os),
                (device, browser, os),
                "{ua}"
            );
        }
    }

    #[test]
    fn a_huge_or_multibyte_header_is_cut_safely() {
        let long = format!("{}Googlebot/2.1", "é".repeat(400));
        assert_eq!(parse(&long).device, "other");
        assert_eq!(parse(&"x".repeat(100_000)).device, "other");
    }
}
