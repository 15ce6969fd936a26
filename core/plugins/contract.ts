import type { LoggerInstance, ServiceBroker, ServiceSchema } from "moleculer";
import type { z } from "zod";
import type { ActivityQueue } from "../../plugins/queue/contract";
import type { ActivityStore } from "../../plugins/store/contract";
import type { Activity } from "../activity/model";
import type { HubConfig, Role } from "../config/schema";
import type { PersistLedger } from "../reconciler/ledger";
import type { Principal } from "../tenancy/directory";

export const PLUGIN_KINDS = ["ingestion", "queue", "store", "search", "consumer", "connector", "monitoring"] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/** A credential a plugin needs; secret ones are encrypted at rest and never logged or returned. */
export interface CredentialSpec {
  name: string;
  description: string;
  secret: boolean;
  required: boolean;
}

export interface PluginManifest<S extends z.ZodTypeAny = z.ZodTypeAny> {
  /** Unique, kebab-case: also the key of the plugin's part of `config.plugins`. */
  id: string;
  kind: PluginKind;
  /** Semantic version of the plugin. */
  version: string;
  description: string;
  /** Schema of the plugin's configuration; validated at start-up with field-level errors. */
  config: S;
  credentials?: CredentialSpec[];
  /** Node roles on which the plugin runs. */
  roles: Role[];
}

/**
 * Runs on web activities before they are stored and queued. It must not throw for bad data:
 * the intake catches any error, counts it, and keeps the activity unenriched.
 */
export type ActivityEnricher = (activity: Activity, principal: Principal) => void;

/** Typed extension points that plugins contribute to while the hub is assembled. */
export interface HubExtensions {
  enrichers: ActivityEnricher[];
  /**
   * REST aliases under `/api/v1` (`"GET campaigns/:id": "campaigns.get"`) that plugins add from
   * their `services()` factory; the gateway reads them when the services are created.
   */
  apiRoutes: Record<string, string>;
}

/** What the hub gives every plugin. */
export interface HubServices {
  readonly config: HubConfig;
  readonly logger: LoggerInstance;
  /** The node's queue, started on first use and stopped with the hub. */
  queue(): Promise<ActivityQueue>;
  /** The node's store, started on first use and stopped with the hub. */
  store(): Promise<ActivityStore>;
  /**
   * The node's persist ledger (`core/reconciler/ledger.ts`), opened on first use: whatever writes
   * an activity to queue and store in parallel reports the write, so the reconciler knows where
   * the two may disagree.
   */
  ledger(): PersistLedger;
  readonly extensions: HubExtensions;
  readonly broker: ServiceBroker;
}

export interface PluginContext<T> {
  /** The plugin's own configuration, validated against its manifest. */
  config: T;
  hub: HubServices;
}

export interface HubPlugin<S extends z.ZodTypeAny = z.ZodTypeAny> {
  manifest: PluginManifest<S>;
  /** Returns the Moleculer services the plugin runs on this node. */
  services(context: PluginContext<z.infer<S>>): ServiceSchema[];
}

/** Declares a plugin; the identity function that gives TypeScript the config type. */
export function definePlugin<S extends z.ZodTypeAny>(plugin: HubPlugin<S>): HubPlugin<S> {
  return plugin;
}
