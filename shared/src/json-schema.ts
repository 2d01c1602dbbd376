import { z } from "zod";
import { ACTIONS, ACTION_NAMES } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { SOCKET_EVENTS } from "./events.js";
import { DeviceDescriptionSchema, ResourceDescriptionSchema } from "./model.js";
import { ActionRecordSchema, ActionRequestBodySchema, HealthSchema, HostViewSchema } from "./records.js";

type JsonSchema = Record<string, unknown>;

/**
 * A zod schema as JSON Schema (draft 2020-12). `input` (default) describes what the wire accepts;
 * `output` describes what a sender produces (defaults filled in), which suits responses.
 */
export function toJsonSchema(schema: z.ZodType, io: "input" | "output" = "input"): JsonSchema {
  return z.toJSONSchema(schema, { io, unrepresentable: "any" }) as JsonSchema;
}

/** JSON Schema of every action's params and result, with its resource kind and retry safety. */
export function actionCatalogueJsonSchema(): Record<string, JsonSchema> {
  return Object.fromEntries(
    ACTION_NAMES.map((name) => {
      const spec = ACTIONS[name];
      return [
        name,
        {
          description: spec.description,
          resource_kind: spec.resourceKind,
          retry_safe: spec.retrySafe,
          params: toJsonSchema(spec.params),
          result: toJsonSchema(spec.result),
        },
      ];
    }),
  );
}

/** JSON Schema of every socket event (payload and ack). */
export function socketEventsJsonSchema(): Record<string, JsonSchema> {
  return Object.fromEntries(
    Object.entries(SOCKET_EVENTS).map(([name, ev]) => [
      name,
      {
        namespace: ev.namespace,
        direction: ev.direction,
        payload: toJsonSchema(ev.schema),
        ack: ev.ack === null ? null : toJsonSchema(ev.ack),
      },
    ]),
  );
}

/** The whole protocol as JSON Schema: catalogue, model, records, events and the error envelope. */
export function protocolJsonSchema(): JsonSchema {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "labrig protocol",
    actions: actionCatalogueJsonSchema(),
    events: socketEventsJsonSchema(),
    models: {
      ErrorEnvelope: toJsonSchema(ErrorEnvelopeSchema),
      ResourceDescription: toJsonSchema(ResourceDescriptionSchema),
      DeviceDescription: toJsonSchema(DeviceDescriptionSchema),
      HostView: toJsonSchema(HostViewSchema),
      ActionRequestBody: toJsonSchema(ActionRequestBodySchema),
      ActionRecord: toJsonSchema(ActionRecordSchema),
      Health: toJsonSchema(HealthSchema),
    },
  };
}
