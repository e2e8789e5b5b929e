//! Identity resolution, as Segment's merges profiles: which profiles a message's identifiers
//! already belong to, whether they may be merged (never two user ids), the merge itself, and
//! attaching the message's identifiers to the profile it lands on.

use rusqlite::{OptionalExtension, params};

use super::{StoreError, Tx};

/// The profiles the message's identifiers (and an alias's previous id) already belong to,
/// oldest first; ids (a sequence) break ties within a millisecond.
pub(super) fn profiles_of(
    tx: &Tx<'_>,
    identifiers: &[(String, String)],
    links: &[String],
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut candidates: Vec<(String, i64)> = Vec::new();
    let mut add = |profile: String, created: i64| {
        if !candidates.iter().any(|(p, _)| *p == profile) {
            candidates.push((profile, created));
        }
    };
    for (kind, value) in identifiers {
        if let Some(found) = tx
            .query_row(
                "SELECT p.id, p.created_at FROM identities i JOIN profiles p ON p.id = i.profile WHERE i.kind = ?1 AND i.value = ?2",
                [kind, value],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
            )
            .optional()?
        {
            add(found.0, found.1);
        }
    }
    for value in links {
        let mut statement = tx.prepare(
            "SELECT p.id, p.created_at FROM identities i JOIN profiles p ON p.id = i.profile
             WHERE i.kind IN ('user_id', 'anonymous_id') AND i.value = ?1",
        )?;
        let rows = statement.query_map([value], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (profile, created) = row?;
            add(profile, created);
        }
    }
    candidates
        .sort_by(|(a, created_a), (b, created_b)| created_a.cmp(created_b).then_with(|| a.cmp(b)));
    Ok(candidates)
}

/// The candidates that may be merged, and the user id the merged profile will hold. A
/// profile holds one user_id: profiles whose user_id differs from the message's (or from the
/// winner's) are not merged, as Segment's identity limits would have it.
pub(super) fn mergeable(
    tx: &Tx<'_>,
    candidates: &[(String, i64)],
    message_user: Option<String>,
) -> Result<(Vec<String>, Option<String>), StoreError> {
    let mut compatible = Vec::new();
    let mut chosen_user = message_user;
    for (profile, _) in candidates {
        let user: Option<String> = tx
            .query_row(
                "SELECT value FROM identities WHERE profile = ?1 AND kind = 'user_id'",
                [profile],
                |row| row.get(0),
            )
            .optional()?;
        match (&chosen_user, &user) {
            (Some(a), Some(b)) if a != b => continue,
            (None, Some(b)) => chosen_user = Some(b.clone()),
            _ => {}
        }
        compatible.push(profile.clone());
    }
    Ok((compatible, chosen_user))
}

/// A new profile's id: a sequence, not a row count (merges delete profiles, and a count
/// would hand out an id still in use).
pub(super) fn new_profile(tx: &Tx<'_>, received_ms: i64) -> Result<String, StoreError> {
    let next: i64 = tx
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'profile_seq'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0)
        + 1;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('profile_seq', ?1)",
        [next.to_string()],
    )?;
    let id = format!("prf_{next:08}");
    tx.execute(
        "INSERT INTO profiles (id, created_at, updated_at) VALUES (?1, ?2, ?2)",
        params![id, received_ms],
    )?;
    Ok(id)
}

/// Moves `loser`'s identities, messages and traits to `winner`; the winner's own traits win
/// a conflict.
pub(super) fn merge(tx: &Tx<'_>, winner: &str, loser: &str) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE identities SET profile = ?1 WHERE profile = ?2",
        [winner, loser],
    )?;
    tx.execute(
        "UPDATE messages SET profile = ?1 WHERE profile = ?2",
        [winner, loser],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO traits (profile, key, value, updated_at) SELECT ?1, key, value, updated_at FROM traits WHERE profile = ?2",
        [winner, loser],
    )?;
    tx.execute("DELETE FROM traits WHERE profile = ?1", [loser])?;
    tx.execute("DELETE FROM profiles WHERE id = ?1", [loser])?;
    Ok(())
}

/// The message's identifiers onto the profile, but a second user id.
pub(super) fn attach(
    tx: &Tx<'_>,
    profile: &str,
    identifiers: &[(String, String)],
    user: Option<&str>,
    message_id: &str,
    received_ms: i64,
) -> Result<(), StoreError> {
    for (kind, value) in identifiers {
        if kind == "user_id" && user.is_some_and(|u| u != value) {
            continue;
        }
        tx.execute(
            "INSERT OR IGNORE INTO identities (kind, value, profile, created_at, first_message_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, value, profile, received_ms, message_id],
        )?;
    }
    Ok(())
}
