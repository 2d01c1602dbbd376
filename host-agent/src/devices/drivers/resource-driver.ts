import type { ACTIONS, ActionName, ActionParamsOf, ActionResultOf, ResourceKind } from "@labrig/shared";

/** The catalogue's actions that need a resource of kind K (null: actions that touch no hardware). */
export type ActionsOfKind<K extends ResourceKind | null> = { [A in ActionName]: (typeof ACTIONS)[A]["resourceKind"] extends K ? A : never }[ActionName];

/** Runs one action with params already validated (defaults applied); the executor checks the result's shape. */
export type ActionHandler<A extends ActionName> = (params: ActionParamsOf<A>, signal: AbortSignal) => Promise<ActionResultOf<A>> | ActionResultOf<A>;

/**
 * A handler for every catalogue action of kind K, typed from the catalogue: an action added to
 * the catalogue without a handler in its kind's driver is a compile error, not a runtime switch
 * that falls through.
 */
export type ActionHandlers<K extends ResourceKind | null> = { readonly [A in ActionsOfKind<K>]: ActionHandler<A> };

/**
 * One resource of a device and how to operate it (labgrid's driver bound to its resource):
 * start/stop for what it holds open, and the handlers of its kind's actions.
 */
export interface ResourceDriver<K extends ResourceKind = ResourceKind> {
  readonly kind: K;
  /** The resource's name in the device's config. */
  readonly resource: string;
  readonly handlers: ActionHandlers<K>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The handler map of any one kind. */
export type SomeActionHandlers = { [K in ResourceKind]: ActionHandlers<K> }[ResourceKind] | ActionHandlers<null>;

/** The handler for `action` in a map typed by kind, for dispatch by name (the map's type guarantees it exists). */
export function handlerFor(handlers: SomeActionHandlers, action: ActionName): ActionHandler<ActionName> | undefined {
  // The map is typed per kind; dispatch by a runtime name needs the untyped view of it.
  return (handlers as unknown as Partial<Record<ActionName, ActionHandler<ActionName>>>)[action];
}
