#include "router/unit_plan.h"

namespace cutover::router {
namespace {

const LaneState& laneOf(const UnitFacts& facts, Store store) {
  return store == Store::Old ? facts.old_lane : facts.new_lane;
}

}  // namespace

UnitPlan planUnit(const UnitFacts& facts) {
  static const StatementInfo kUnknown;   // a write: the safe default
  const StatementInfo& info = facts.info != nullptr ? *facts.info : kUnknown;
  const Route& route = facts.route;
  UnitPlan plan;
  plan.both = route.both || (facts.names_statement && !route.mirror);
  plan.serve = plan.both ? facts.authority : route.serve;
  const LaneState& serving = laneOf(facts, plan.serve);
  if (!serving.up || (plan.serve != facts.authority && serving.fenced)) plan.serve = facts.authority;

  const LaneState& secondary = laneOf(facts, otherStore(plan.serve));
  plan.mirrored = route.mirror || plan.both;
  // sync waits (bounded by connect_timeout_ms) for a secondary being reconnected rather than
  // missing the unit; async never makes the client wait for it.
  const bool waits_for_secondary = secondary.reconnecting && facts.mirror != config::MirrorMode::Async;
  // Session state (SET, a named statement's Parse) still reaches both: it is not the transaction's data.
  const bool cut_off = facts.in_transaction && facts.transaction_unmirrored && !plan.both;
  if (plan.mirrored && ((!secondary.up && !waits_for_secondary) || cut_off)) {
    plan.secondary_unavailable = route.mirror;
    plan.mirrored = false;
  }
  plan.async = plan.mirrored && facts.mirror == config::MirrorMode::Async;
  plan.temporary_on_serve_only = info.creates_temporary && !plan.mirrored;
  plan.secondary_first = plan.mirrored && !plan.async && facts.in_transaction &&
                         info.transaction == TransactionCommand::Commit;
  plan.wrapped = plan.mirrored && route.mirror && !facts.in_transaction && !facts.open &&
                 info.kind == StatementKind::Write && facts.all_wrappable && !info.multi_statement &&
                 info.transaction == TransactionCommand::None && !facts.function_call;
  plan.shadow = route.shadow && !plan.mirrored && !facts.in_transaction && info.kind == StatementKind::Read;
  return plan;
}

}  // namespace cutover::router
