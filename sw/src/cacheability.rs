//! Which responses the SW may keep. Pure logic, tested natively.
//!
//! The server's headers say what is ephemeral (DESIGN.md): a `no-store` response is never
//! stored, and neither is anything the Cache API could not faithfully give back later: errors,
//! opaque responses (their status is hidden, so a stored 500 would look like a success),
//! partial (206) responses, and responses to anything but GET. `Vary: *` is refused too,
//! because `Cache.put` rejects it.

/// What the Cache API reports as `Response.type`, reduced to what matters for storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `basic`, `cors` or `default`: status and headers are visible.
    Transparent,
    /// `opaque` or `opaqueredirect`: status and headers are hidden from the SW.
    Opaque,
    /// `error`: a network error.
    Error,
}

/// The facts about a request/response pair that decide whether it may be stored.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The request method, in any case.
    pub method: &'a str,
    /// The response status.
    pub status: u16,
    /// The response type.
    pub kind: Kind,
    /// The response's `Cache-Control` header, if any.
    pub cache_control: Option<&'a str>,
    /// The response's `Vary` header, if any.
    pub vary: Option<&'a str>,
}

/// Why a response is not stored; useful in logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request was not a GET.
    NotGet,
    /// The response is opaque or a network error.
    NotTransparent,
    /// The status is not 2xx.
    NotSuccess,
    /// A 206: the Cache API would serve a fragment as if it were the whole.
    Partial,
    /// `Cache-Control: no-store`: the server says the data is ephemeral.
    NoStore,
    /// `Vary: *`: the Cache API refuses it.
    VaryStar,
}

/// Decides whether the exchange may be stored; `Ok(())` means it may.
pub fn check(exchange: &Exchange<'_>) -> Result<(), Refusal> {
    if !exchange.method.eq_ignore_ascii_case("GET") {
        return Err(Refusal::NotGet);
    }
    if exchange.kind != Kind::Transparent {
        return Err(Refusal::NotTransparent);
    }
    if exchange.status == 206 {
        return Err(Refusal::Partial);
    }
    if !(200..300).contains(&exchange.status) {
        return Err(Refusal::NotSuccess);
    }
    if exchange.cache_control.is_some_and(has_no_store) {
        return Err(Refusal::NoStore);
    }
    if exchange
        .vary
        .is_some_and(|vary| vary.split(',').any(|field| field.trim() == "*"))
    {
        return Err(Refusal::VaryStar);
    }
    Ok(())
}

/// True when a `Cache-Control` value holds the `no-store` directive (names are
/// case-insensitive; `no-store` takes no argument, but a stray one must not hide it).
pub fn has_no_store(cache_control: &str) -> bool {
    has_directive(cache_control, "no-store")
}

/// True when a `Cache-Control` value holds `private`. The field-list form (`private="x"`)
/// counts as wholly private too: keeping a response apart is always the safe side.
pub fn is_private(cache_control: &str) -> bool {
    has_directive(cache_control, "private")
}

fn has_directive(cache_control: &str, wanted: &str) -> bool {
    cache_control.split(',').any(|directive| {
        let name = directive.split('=').next().unwrap_or("").trim();
        name.eq_ignore_ascii_case(wanted)
    })
}

/// The request header names a `Vary` value lists, lower case, without duplicates or `*`
/// (a `Vary: *` response is never stored, so it never needs a key).
pub fn vary_fields(vary: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    for field in vary.split(',').map(str::trim) {
        let field = field.to_ascii_lowercase();
        if !field.is_empty() && field != "*" && !fields.contains(&field) {
            fields.push(field);
        }
    }
    fields
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_get() -> Exchange<'static> {
        Exchange {
            method: "GET",
            status: 200,
            kind: Kind::Transparent,
            cache_control: Some("no-cache"),
            vary: None,
        }
    }

    #[test]
    fn a_revalidated_200_get_is_stored() {
        assert_eq!(check(&ok_get()), Ok(()));
        assert_eq!(
            check(&Exchange {
                status: 204,
                ..ok_get()
            }),
            Ok(())
        );
        assert_eq!(
            check(&Exchange {
                cache_control: None,
                ..ok_get()
            }),
            Ok(())
        );
    }

    #[test]
    fn no_store_is_never_stored_however_it_is_spelled() {
        for value in [
            "no-store",
            "private, No-Store",
            "max-age=0,no-store",
            " no-store=1 ",
        ] {
            let exchange = Exchange {
                cache_control: Some(value),
                ..ok_get()
            };
            assert_eq!(check(&exchange), Err(Refusal::NoStore), "{value}");
        }
        // Not a directive of its own.
        assert!(!has_no_store("x-no-store-ish, no-cache"));
    }

    #[test]
    fn only_get_is_stored() {
        for method in ["POST", "PUT", "DELETE", "HEAD"] {
            assert_eq!(
                check(&Exchange { method, ..ok_get() }),
                Err(Refusal::NotGet)
            );
        }
        assert_eq!(
            check(&Exchange {
                method: "get",
                ..ok_get()
            }),
            Ok(())
        );
    }

    #[test]
    fn errors_partials_and_hidden_responses_are_not_stored() {
        for status in [301, 304, 404, 500, 503] {
            let exchange = Exchange { status, ..ok_get() };
            assert_eq!(check(&exchange), Err(Refusal::NotSuccess), "{status}");
        }
        assert_eq!(
            check(&Exchange {
                status: 206,
                ..ok_get()
            }),
            Err(Refusal::Partial)
        );
        for kind in [Kind::Opaque, Kind::Error] {
            assert_eq!(
                check(&Exchange { kind, ..ok_get() }),
                Err(Refusal::NotTransparent)
            );
        }
    }

    #[test]
    fn vary_star_is_not_stored() {
        let exchange = Exchange {
            vary: Some("Accept, *"),
            ..ok_get()
        };
        assert_eq!(check(&exchange), Err(Refusal::VaryStar));
        assert_eq!(
            check(&Exchange {
                vary: Some("Accept"),
                ..ok_get()
            }),
            Ok(())
        );
    }

    #[test]
    fn private_is_a_directive_of_its_own() {
        assert!(is_private("private, no-cache"));
        assert!(is_private("Private=\"Set-Cookie\""));
        assert!(!is_private("public, max-age=60"));
        assert!(!is_private("x-private"));
    }

    #[test]
    fn vary_lists_header_names_once_in_lower_case() {
        assert_eq!(vary_fields("Accept-Encoding"), vec!["accept-encoding"]);
        assert_eq!(
            vary_fields(" Accept-Language ,accept-language, X-Lang,"),
            vec!["accept-language", "x-lang"]
        );
        assert!(vary_fields("*").is_empty());
    }
}
