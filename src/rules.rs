//! express-session's end-of-request rules as one pure function, [`decide`]: from what
//! is known about the session, whether to save, touch, destroy, and send or clear the
//! cookie.

/// Where a session stands at the end of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    /// `Session::unset`: `req.session = null`.
    Unset,
    /// `Session::destroy` ran (the store record is gone).
    Destroyed,
}

/// The express-session options that decide what happens at the end of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) resave: bool,
    pub(crate) save_uninitialized: bool,
    pub(crate) rolling: bool,
    /// `unset: 'destroy'`: an unset session is destroyed.
    pub(crate) destroy_unset: bool,
}

/// Everything [`decide`] needs to know about the session at the end of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub(crate) status: Status,
    /// The ID came from the cookie and the store had it.
    pub(crate) loaded: bool,
    pub(crate) regenerated: bool,
    /// The data (or, deliberately, the cookie) changed since load.
    pub(crate) modified: bool,
    /// `set_max_age` changed the cookie: it is re-sent, persistent or not (remember-me
    /// switched off sends a browser-session cookie).
    pub(crate) cookie_changed: bool,
    /// An older secret signed the cookie: it is re-sent signed with the newest.
    pub(crate) resign: bool,
    /// The session moved to a new ID in this request (a periodic reissue, or the old
    /// ID's tombstone followed): the cookie with the new ID is sent.
    pub(crate) reissued: bool,
    /// `Some(true)`: an explicit `save()` stored the session as it now is.
    pub(crate) explicit_save: Option<bool>,
    /// The cookie has an expiry.
    pub(crate) persistent: bool,
    pub(crate) had_cookie: bool,
    pub(crate) secure_cookie: bool,
    pub(crate) secure_connection: bool,
}

/// What to do at the end of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Outcome {
    pub(crate) destroy: bool,
    pub(crate) save: bool,
    pub(crate) touch: bool,
    pub(crate) set_cookie: bool,
    pub(crate) remove_cookie: bool,
    /// The cookie should have been sent but is `Secure` on a plain-HTTP connection.
    pub(crate) withheld: bool,
}

/// express-session's rules (`shouldSave`, `shouldTouch`, `shouldSetCookie`,
/// `shouldDestroy`), with the differences DESIGN.md lists.
pub(crate) fn decide(rules: Rules, f: Facts) -> Outcome {
    match f.status {
        Status::Destroyed => removal(f, false),
        Status::Unset if rules.destroy_unset => removal(f, true),
        Status::Unset => Outcome::default(),
        Status::Active => decide_active(rules, f),
    }
}

/// Our difference from express-session: a destroyed session's cookie is cleared too
/// (when the browser has one, and it may be written on this connection).
fn removal(f: Facts, destroy: bool) -> Outcome {
    let withheld = f.had_cookie && f.secure_cookie && !f.secure_connection;
    Outcome {
        destroy,
        remove_cookie: f.had_cookie && !withheld,
        withheld,
        ..Outcome::default()
    }
}

fn decide_active(rules: Rules, f: Facts) -> Outcome {
    let is_new = !f.loaded || f.regenerated;
    let saved_at_load = f.loaded && !f.regenerated && !rules.resave;
    let is_saved = f.explicit_save.unwrap_or(saved_at_load && !f.modified);
    let ever_saved = f.explicit_save.is_some() || (f.loaded && !rules.resave);
    let save = if !rules.save_uninitialized && !ever_saved && is_new {
        f.modified
    } else {
        !is_saved
    };
    let wants_cookie = if is_new {
        rules.save_uninitialized || f.modified
    } else {
        rules.rolling || f.resign || f.reissued || f.cookie_changed || (f.persistent && f.modified)
    };
    let withheld = wants_cookie && f.secure_cookie && !f.secure_connection;
    Outcome {
        save,
        touch: !is_new && !save,
        set_cookie: wants_cookie && !withheld,
        withheld,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        resave: false,
        save_uninitialized: false,
        rolling: false,
        destroy_unset: false,
    };

    /// A session as it is at the end of a plain request: loaded, unchanged, over HTTP.
    const LOADED: Facts = Facts {
        status: Status::Active,
        loaded: true,
        regenerated: false,
        modified: false,
        cookie_changed: false,
        resign: false,
        reissued: false,
        explicit_save: None,
        persistent: false,
        had_cookie: true,
        secure_cookie: false,
        secure_connection: false,
    };
    const NEW: Facts = Facts {
        loaded: false,
        had_cookie: false,
        ..LOADED
    };

    fn out(save: bool, touch: bool, set_cookie: bool) -> Outcome {
        Outcome {
            save,
            touch,
            set_cookie,
            ..Outcome::default()
        }
    }

    /// (case, rules, facts, expected): one row per rule in express-session's source.
    fn table() -> Vec<(&'static str, Rules, Facts, Outcome)> {
        let resave = Rules {
            resave: true,
            ..RULES
        };
        let save_uninit = Rules {
            save_uninitialized: true,
            ..RULES
        };
        let rolling = Rules {
            rolling: true,
            ..RULES
        };
        let destroy = Rules {
            destroy_unset: true,
            ..RULES
        };
        let modified = Facts {
            modified: true,
            ..LOADED
        };
        vec![
            (
                "new, untouched, saveUninitialized off: nothing",
                RULES,
                NEW,
                out(false, false, false),
            ),
            (
                "new, untouched, saveUninitialized on: save + cookie",
                save_uninit,
                NEW,
                out(true, false, true),
            ),
            (
                "new, modified: save + cookie",
                RULES,
                Facts {
                    modified: true,
                    ..NEW
                },
                out(true, false, true),
            ),
            (
                "new, explicitly saved, unchanged since: no second save, no cookie",
                RULES,
                Facts {
                    explicit_save: Some(true),
                    ..NEW
                },
                out(false, false, false),
            ),
            (
                "new, modified, explicitly saved, unchanged since: cookie only",
                RULES,
                Facts {
                    modified: true,
                    explicit_save: Some(true),
                    ..NEW
                },
                out(false, false, true),
            ),
            (
                "new, saved then changed: save again",
                RULES,
                Facts {
                    modified: true,
                    explicit_save: Some(false),
                    ..NEW
                },
                out(true, false, true),
            ),
            (
                "loaded, unchanged: touch only",
                RULES,
                LOADED,
                out(false, true, false),
            ),
            (
                "loaded, unchanged, resave: save, never touch",
                resave,
                LOADED,
                out(true, false, false),
            ),
            (
                "loaded, modified: save, no cookie for a browser-session cookie",
                RULES,
                modified,
                out(true, false, false),
            ),
            (
                "loaded, modified, persistent: save + cookie",
                RULES,
                Facts {
                    persistent: true,
                    ..modified
                },
                out(true, false, true),
            ),
            (
                "loaded, unchanged, persistent: touch, no cookie",
                RULES,
                Facts {
                    persistent: true,
                    ..LOADED
                },
                out(false, true, false),
            ),
            (
                "loaded, rolling: cookie every time",
                rolling,
                LOADED,
                out(false, true, true),
            ),
            (
                "loaded, explicitly saved, unchanged since: touch is skipped too",
                RULES,
                Facts {
                    modified: true,
                    explicit_save: Some(true),
                    ..LOADED
                },
                out(false, true, false),
            ),
            (
                "regenerated, empty: save + cookie even uninitialized",
                RULES,
                Facts {
                    regenerated: true,
                    modified: true,
                    ..LOADED
                },
                out(true, false, true),
            ),
            (
                "regenerated then saved explicitly: cookie, no double save",
                RULES,
                Facts {
                    regenerated: true,
                    modified: true,
                    explicit_save: Some(true),
                    ..LOADED
                },
                out(false, false, true),
            ),
            (
                "secure cookie over http: saved, cookie withheld",
                save_uninit,
                Facts {
                    secure_cookie: true,
                    ..NEW
                },
                Outcome {
                    save: true,
                    withheld: true,
                    ..Outcome::default()
                },
            ),
            (
                "secure cookie over https: sent",
                save_uninit,
                Facts {
                    secure_cookie: true,
                    secure_connection: true,
                    ..NEW
                },
                out(true, false, true),
            ),
            (
                "loaded, cookie made a browser-session one (remember-me off): save + cookie",
                RULES,
                Facts {
                    modified: true,
                    cookie_changed: true,
                    persistent: false,
                    ..LOADED
                },
                out(true, false, true),
            ),
            (
                "loaded, signed with an older secret: re-sent (signed with the newest)",
                RULES,
                Facts {
                    resign: true,
                    ..LOADED
                },
                out(false, true, true),
            ),
            (
                "loaded, reissued: the new ID's cookie is sent (browser-session cookie too)",
                RULES,
                Facts {
                    reissued: true,
                    ..LOADED
                },
                out(false, true, true),
            ),
            (
                "loaded, reissued, modified: save + the new cookie",
                RULES,
                Facts {
                    reissued: true,
                    ..modified
                },
                out(true, false, true),
            ),
            (
                "loaded, reissued, secure cookie over http: withheld",
                RULES,
                Facts {
                    reissued: true,
                    secure_cookie: true,
                    ..LOADED
                },
                Outcome {
                    touch: true,
                    withheld: true,
                    ..Outcome::default()
                },
            ),
            (
                "reissued, then destroyed: clear the cookie",
                RULES,
                Facts {
                    status: Status::Destroyed,
                    reissued: true,
                    ..LOADED
                },
                Outcome {
                    remove_cookie: true,
                    ..Outcome::default()
                },
            ),
            (
                "unset, keep: nothing at all",
                rolling,
                Facts {
                    status: Status::Unset,
                    ..modified
                },
                out(false, false, false),
            ),
            (
                "unset, destroy: destroy + clear cookie",
                destroy,
                Facts {
                    status: Status::Unset,
                    ..modified
                },
                Outcome {
                    destroy: true,
                    remove_cookie: true,
                    ..Outcome::default()
                },
            ),
            (
                "unset, destroy, no cookie came: destroy only",
                destroy,
                Facts {
                    status: Status::Unset,
                    ..NEW
                },
                Outcome {
                    destroy: true,
                    ..Outcome::default()
                },
            ),
            (
                "destroyed: clear the cookie, nothing else",
                resave,
                Facts {
                    status: Status::Destroyed,
                    ..modified
                },
                Outcome {
                    remove_cookie: true,
                    ..Outcome::default()
                },
            ),
        ]
    }

    #[test]
    fn decide_follows_express_session_row_by_row() {
        for (case, rules, facts, expected) in table() {
            assert_eq!(decide(rules, facts), expected, "{case}");
        }
    }

    /// Every combination of the inputs, checked against the invariants that hold across
    /// the whole table.
    #[test]
    fn decide_invariants_hold_for_every_combination() {
        for bits in 0u32..1 << 12 {
            let bit = |i: u32| bits >> i & 1 == 1;
            let rules = Rules {
                resave: bit(0),
                save_uninitialized: bit(1),
                rolling: bit(2),
                destroy_unset: false,
            };
            let facts = Facts {
                status: Status::Active,
                loaded: bit(3),
                regenerated: bit(4),
                modified: bit(5) || bit(4),
                cookie_changed: false,
                resign: false,
                reissued: bit(3) && bit(11),
                explicit_save: bit(6).then_some(bit(7)),
                persistent: bit(8),
                had_cookie: bit(3),
                secure_cookie: bit(9),
                secure_connection: bit(10),
            };
            let o = decide(rules, facts);
            let fresh = !facts.loaded || facts.regenerated;
            assert!(!(o.save && o.touch), "{rules:?} {facts:?}");
            assert!(
                !o.touch || !fresh,
                "only a returning session is touched: {facts:?}"
            );
            assert!(!(o.set_cookie && facts.secure_cookie && !facts.secure_connection));
            if rules.resave && !fresh && facts.explicit_save.is_none() {
                assert!(o.save, "resave saves a loaded session: {facts:?}");
            }
            if facts.regenerated && facts.explicit_save != Some(true) {
                assert!(o.save, "a regenerated session is saved");
            }
            let can_send = facts.secure_connection || !facts.secure_cookie;
            if rules.rolling && !fresh && can_send {
                assert!(o.set_cookie, "rolling re-sends: {facts:?}");
            }
            if facts.reissued && can_send {
                assert!(
                    o.set_cookie,
                    "a reissued session's new ID is sent: {facts:?}"
                );
            }
            assert!(
                !o.destroy && !o.remove_cookie,
                "an active session is never destroyed"
            );
        }
    }
}
