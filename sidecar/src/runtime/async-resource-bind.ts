import { AsyncResource } from 'node:async_hooks';

/**
 * Node 20's AsyncResource.prototype.bind defines a deprecated `asyncResource` getter (DEP0172)
 * through util.deprecate() on every call, and ClientHttp2Session.request() calls bind() once per
 * stream. Profiling the sidecar put that at about 6% of its busy CPU. This installs a bind() with
 * the same calling behaviour (the function runs in the resource's async scope, with the same
 * `this` and arguments) but without the deprecated property. Node 22 dropped the property
 * itself, so the patch applies to Node 20 and 21 only, and only in the sidecar process.
 */
export function installFastAsyncResourceBind(): boolean {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return false;
  AsyncResource.prototype.bind = function bind<F extends (...args: never[]) => unknown>(this: AsyncResource, fn: F, thisArg?: unknown): F {
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    const resource = this;
    if (thisArg === undefined) {
      return function bound(this: unknown, ...args: unknown[]) {
        return resource.runInAsyncScope(fn as unknown as (...a: unknown[]) => unknown, this, ...args);
      } as unknown as F;
    }
    return resource.runInAsyncScope.bind(resource, fn as unknown as (...a: unknown[]) => unknown, thisArg) as unknown as F;
  } as typeof AsyncResource.prototype.bind;
  return true;
}
