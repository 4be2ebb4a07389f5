//! The readings of a request: every method and path an upstream may act on for it. A route
//! holds only if it holds for all of them, so this is the one place that lists them.
//!
//! - Methods: the request's own (upper-cased too, as Django and Flask read it); GET for HEAD (axum, Express, Flask, Spring and Go's
//!   `ServeMux` run the GET handler for HEAD, RFC 9110 §9.3.2); and every method override
//!   the request carries ([`OriginalRequest::method_overrides`]), which Express
//!   `method-override`, Rails, Laravel and Symfony act on instead of the method.
//! - Paths, with `path_matching = "strict"`: the path as sent; ASCII case folded (Express
//!   routes case-insensitively by default, as do ASP.NET Core and IIS); and without a
//!   format suffix on its last segment (`/admin.json` is `/admin` to Rails and to Spring
//!   MVC's suffix patterns). `"exact"` keeps the path as sent only.
//!
//! Each method reading with the path as sent is a reading in its own right: when no route
//! matches it, `default` applies. The other path readings only add the requirements of
//! the routes they match, so a public route opens only for its exact path and a derived
//! reading never loosens a decision.

use smallvec::SmallVec;

use crate::config::PathMatching;
use crate::gateway::OriginalRequest;

/// One way an upstream may read the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading<'r> {
    pub method: &'r str,
    pub path: &'r str,
    /// Compare the path with ASCII case folded.
    pub fold_case: bool,
    /// The path as sent: `default` applies when no route matches.
    pub as_sent: bool,
}

impl Reading<'_> {
    /// `GET /admin (case folded)`, for `check --explain`.
    pub fn describe(&self) -> String {
        let how = match (self.as_sent, self.fold_case) {
            (true, _) => "",
            (false, true) => " (case folded)",
            (false, false) => " (format suffix removed)",
        };
        format!("{} {}{how}", self.method, self.path)
    }
}

/// Every reading of `request`, the method and path as sent first. Up to four inline (a
/// method, and a path with one format suffix): a check allocates nothing for them.
pub fn readings(request: &OriginalRequest, matching: PathMatching) -> SmallVec<[Reading<'_>; 4]> {
    let path = request.path();
    let mut all = SmallVec::new();
    for (n, method) in methods(request).enumerate() {
        // Every method brings the path as sent: one already read brings nothing new.
        if methods(request).take(n).any(|earlier| earlier == method) {
            continue;
        }
        let mut read = |path, fold_case, as_sent| all.push(Reading { method, path, fold_case, as_sent });
        read(path, false, true);
        if matching == PathMatching::Strict {
            read(path, true, false);
            for stem in format_stems(path) {
                read(stem, false, false);
                read(stem, true, false);
            }
        }
    }
    all
}

/// The method (and upper-cased, when it is not: Django and Flask upper-case it), GET for
/// HEAD, and each override (GET too for an override to HEAD); repeats are possible.
fn methods(request: &OriginalRequest) -> impl Iterator<Item = &str> {
    std::iter::once(request.method())
        .chain(request.upper_method())
        .chain(request.method_overrides().iter().map(String::as_str))
        .flat_map(|method| std::iter::once(method).chain(method.eq_ignore_ascii_case("HEAD").then_some("GET")))
}

/// The path with each possible format suffix of its last segment removed: `/a/r.tar.gz`
/// gives `/a/r.tar` and `/a/r` (Spring's `.*` takes every dot, Rails the last). A segment
/// that starts with its dot (`/.well-known`) has no suffix.
fn format_stems(path: &str) -> impl Iterator<Item = &str> + Clone {
    let segment_start = path.rfind('/').map_or(0, |i| i + 1);
    let segment = &path[segment_start..];
    segment.match_indices('.').filter(|&(i, _)| i > 0).map(move |(i, _)| &path[..segment_start + i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> OriginalRequest {
        OriginalRequest::new(method, "https", Some("api.example.com"), uri).unwrap()
    }

    fn described(request: &OriginalRequest, matching: PathMatching) -> Vec<String> {
        readings(request, matching).iter().map(Reading::describe).collect()
    }

    #[test]
    fn exact_matching_reads_the_method_and_path_as_sent() {
        assert_eq!(described(&request("GET", "/Admin.json"), PathMatching::Exact), ["GET /Admin.json"]);
    }

    #[test]
    fn strict_matching_adds_the_folded_and_suffixless_paths() {
        assert_eq!(
            described(&request("GET", "/a/Report.tar.gz"), PathMatching::Strict),
            [
                "GET /a/Report.tar.gz",
                "GET /a/Report.tar.gz (case folded)",
                "GET /a/Report (format suffix removed)",
                "GET /a/Report (case folded)",
                "GET /a/Report.tar (format suffix removed)",
                "GET /a/Report.tar (case folded)",
            ]
        );
        let as_sent: Vec<bool> =
            readings(&request("GET", "/a.json"), PathMatching::Strict).iter().map(|r| r.as_sent).collect();
        assert_eq!(as_sent, [true, false, false, false]);
    }

    #[test]
    fn segments_without_a_suffix_have_no_stem() {
        for path in ["/.well-known", "/a.b/c", "/a/", "/"] {
            assert_eq!(format_stems(path).count(), 0, "{path}");
        }
    }

    #[test]
    fn a_lower_case_method_is_also_read_upper_cased() {
        assert_eq!(described(&request("Delete", "/r"), PathMatching::Exact), ["Delete /r", "DELETE /r"]);
        assert_eq!(described(&request("head", "/r"), PathMatching::Exact), ["head /r", "GET /r", "HEAD /r"]);
    }

    #[test]
    fn head_is_also_read_as_get() {
        assert_eq!(described(&request("HEAD", "/r"), PathMatching::Exact), ["HEAD /r", "GET /r"]);
    }

    #[test]
    fn overrides_are_read_besides_the_method() {
        let r = request("POST", "/r?_method=delete&_method=HEAD");
        assert_eq!(described(&r, PathMatching::Exact), ["POST /r", "DELETE /r", "HEAD /r", "GET /r"]);
        let r = request("GET", "/r?_method=GET");
        assert_eq!(described(&r, PathMatching::Exact), ["GET /r"]);
    }
}
