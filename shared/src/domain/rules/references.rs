//! Which traits an expression reads, so that only those are requested from Segment, and
//! which variables, so that a typo (`trait.x`) is caught at start.

use std::collections::BTreeSet;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

/// The variables a rule may read. Anything else is a typo we can catch at start.
const VARIABLES: [&str; 2] = ["traits", "channel"];

/// Finds the trait keys an expression reads: `traits.key`, `has(traits.key)`,
/// `traits["key"]`. Any other use of `traits` (iterating it, a computed key) needs them all.
/// It also measures how deep the tree is; its own recursion is bounded by the text's limits.
#[derive(Default)]
pub(super) struct TraitWalk {
    /// Names bound by comprehensions (`traits.exists(k, ...)` binds `k`).
    pub(super) scopes: Vec<String>,
    pub(super) found: BTreeSet<String>,
    pub(super) whole: bool,
    pub(super) unknown: Option<String>,
    /// Whether it can cost more than its size: a comprehension loops over data, and
    /// `matches` compiles a pattern that may come from data.
    pub(super) loops: bool,
    /// The names the expression itself writes: member names and string literals. A key
    /// among them is the operator's word; any other key came from the customer's data.
    pub(super) written: BTreeSet<String>,
    /// The level being visited, and the deepest one seen.
    depth: usize,
    pub(super) deepest: usize,
}

impl TraitWalk {
    pub(super) fn visit(&mut self, node: &IdedExpr) {
        self.depth += 1;
        self.deepest = self.deepest.max(self.depth);
        self.visit_node(node);
        self.depth -= 1;
    }

    fn visit_node(&mut self, node: &IdedExpr) {
        match &node.expr {
            Expr::Select(select) => {
                self.written.insert(select.field.clone());
                if is_ident(&select.operand, "traits") {
                    self.found.insert(select.field.clone());
                } else {
                    self.visit(&select.operand);
                }
            }
            Expr::Call(call)
                if call.func_name == "_[_]"
                    && call.args.len() == 2
                    && is_ident(&call.args[0], "traits") =>
            {
                match &call.args[1].expr {
                    Expr::Literal(LiteralValue::String(key)) => {
                        self.written.insert(key.to_string());
                        self.found.insert(key.to_string());
                    }
                    _ => {
                        self.whole = true;
                        self.visit(&call.args[1]);
                    }
                }
            }
            Expr::Call(call) => {
                self.loops |= call.func_name == "matches";
                if let Some(target) = &call.target {
                    self.visit(target);
                }
                call.args.iter().for_each(|arg| self.visit(arg));
            }
            Expr::Ident(name) => {
                if name == "traits" {
                    self.whole = true;
                } else if !VARIABLES.contains(&name.as_str())
                    && !name.starts_with('@')
                    && !self.scopes.iter().any(|bound| bound == name)
                    && self.unknown.is_none()
                {
                    self.unknown = Some(name.clone());
                }
            }
            Expr::Comprehension(comprehension) => {
                self.loops = true;
                self.visit(&comprehension.iter_range);
                self.visit(&comprehension.accu_init);
                let bound = [
                    Some(&comprehension.iter_var),
                    comprehension.iter_var2.as_ref(),
                    Some(&comprehension.accu_var),
                ];
                let depth = self.scopes.len();
                self.scopes.extend(bound.into_iter().flatten().cloned());
                self.visit(&comprehension.loop_cond);
                self.visit(&comprehension.loop_step);
                self.visit(&comprehension.result);
                self.scopes.truncate(depth);
            }
            Expr::List(list) => list.elements.iter().for_each(|element| self.visit(element)),
            Expr::Map(map) => map
                .entries
                .iter()
                .for_each(|entry| self.visit_entry(&entry.expr)),
            Expr::Struct(structure) => structure
                .entries
                .iter()
                .for_each(|entry| self.visit_entry(&entry.expr)),
            Expr::Literal(LiteralValue::String(text)) => {
                self.written.insert(text.to_string());
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn visit_entry(&mut self, entry: &EntryExpr) {
        match entry {
            EntryExpr::StructField(field) => self.visit(&field.value),
            EntryExpr::MapEntry(map_entry) => {
                self.visit(&map_entry.key);
                self.visit(&map_entry.value);
            }
        }
    }
}

fn is_ident(node: &IdedExpr, name: &str) -> bool {
    matches!(&node.expr, Expr::Ident(ident) if ident == name)
}
