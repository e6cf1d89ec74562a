import type { TranslateOptions } from '../../control-plane/src/translate/translate';

/**
 * translate()'s options for tests that translate without a control plane: the default trust
 * domain and a stand-in trust bundle (SDS ROOTCA carries it as bytes; nothing parses it here).
 */
export const TEST_TRANSLATE: TranslateOptions = Object.freeze({
  trust: Object.freeze({ trustDomain: 'skein.local', trustBundlePem: '-----BEGIN CERTIFICATE-----\ntest bundle\n-----END CERTIFICATE-----\n' }),
});
