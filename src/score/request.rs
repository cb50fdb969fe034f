//! What a recommendation request asks for ([`RecommendOptions`],
//! [`Filters`], [`Fallback`]) and what it gets back ([`RecList`]).

use std::sync::Arc;

use serde::Serialize;

use crate::model::Model;

/// Where a list of recommendations came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The user's factors.
    Model,
    /// A vector folded in from the items given with the request.
    FoldIn,
    /// Most popular items overall (unknown user or short history).
    Popularity,
    /// Most popular items among the newest 10% of training interactions.
    RecentPopularity,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Model => "model",
            Source::FoldIn => "fold_in",
            Source::Popularity => "popularity",
            Source::RecentPopularity => "recent_popularity",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    pub item: String,
    pub score: f32,
    /// With explanations: the user's items most similar to this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub because: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecList {
    pub user: String,
    pub source: Source,
    pub items: Vec<Scored>,
}

/// Which items may not be returned. The lists compose: an item is returned
/// only if it is not excluded, is in the allow list (when there is one) and
/// is available (when availability is given), and is not a training item of
/// the user (with `exclude_seen`).
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Leave out the user's training items (stored in the model).
    pub exclude_seen: bool,
    /// Items never to return (dense indices): shared, so a service can swap
    /// it (e.g. availability during a sale) without copying per request.
    pub blocked: Option<Arc<Vec<bool>>>,
}

/// Item ids resolved against a model: known dense indices, and how many ids
/// the model did not know.
pub struct ItemList {
    pub items: Vec<u32>,
    pub unknown: usize,
}

impl ItemList {
    pub fn resolve<'a>(model: &Model, ids: impl IntoIterator<Item = &'a str>) -> ItemList {
        let mut items = Vec::new();
        let mut unknown = 0;
        for id in ids {
            match model.item_ids().get(id) {
                Some(i) => items.push(i),
                None => unknown += 1,
            }
        }
        items.sort_unstable();
        items.dedup();
        ItemList { items, unknown }
    }
}

impl Filters {
    fn mask(&mut self, n: usize) -> &mut Vec<bool> {
        Arc::make_mut(self.blocked.get_or_insert_with(|| Arc::new(vec![false; n])))
    }

    /// Never return these items.
    pub fn exclude(&mut self, model: &Model, items: &[u32]) {
        let m = self.mask(model.n_items());
        for &i in items {
            m[i as usize] = true;
        }
    }

    /// Return only items from this list (an allow list, or the available items).
    pub fn only(&mut self, model: &Model, items: &[u32]) {
        let mut allowed = vec![false; model.n_items()];
        for &i in items {
            allowed[i as usize] = true;
        }
        let m = self.mask(model.n_items());
        for (b, a) in m.iter_mut().zip(allowed) {
            *b |= !a;
        }
    }

    /// Adds external item ids to the exclusion list; unknown ids are ignored
    /// (they could never be returned anyway).
    pub fn exclude_items<'a>(&mut self, model: &Model, ids: impl IntoIterator<Item = &'a str>) {
        let l = ItemList::resolve(model, ids);
        self.exclude(model, &l.items);
    }

    #[inline]
    pub fn blocks(&self, i: u32) -> bool {
        self.blocked.as_ref().is_some_and(|m| m[i as usize])
    }
}

/// Which popularity list serves cold starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fallback {
    /// Recent popularity when the model has it, else overall.
    #[default]
    Recent,
    Overall,
}

/// Everything a recommendation request can ask for.
#[derive(Clone, Debug)]
pub struct RecommendOptions {
    pub n: usize,
    pub filters: Filters,
    /// An unknown user is an error instead of getting the fallback.
    pub strict: bool,
    /// Users with fewer training items than this get the fallback.
    pub min_history: usize,
    pub fallback: Fallback,
    /// Attach to each item the user's most similar items (up to this many).
    pub explain: usize,
}

impl Default for RecommendOptions {
    fn default() -> Self {
        RecommendOptions {
            n: 10,
            filters: Filters {
                exclude_seen: true,
                blocked: None,
            },
            strict: false,
            min_history: 0,
            fallback: Fallback::Recent,
            explain: 0,
        }
    }
}
