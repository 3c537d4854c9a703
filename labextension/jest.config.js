/**
 * Unit tests run in node: api.ts with a mocked ServerConnection, the models with an
 * injected fake api. @jupyterlab/coreutils ships ES modules, so ts-jest compiles it too.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.[tj]sx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  },
  transformIgnorePatterns: ['/node_modules/(?!@jupyterlab/coreutils/)']
};
