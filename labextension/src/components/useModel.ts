import { useEffect, useReducer } from 'react';

import type { PollingModel } from '../polling';

/** Re-render the calling component whenever the model says it changed. */
export function useModel<T extends PollingModel>(model: T): T {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const onChanged = (): void => bump();
    model.changed.connect(onChanged);
    return () => {
      model.changed.disconnect(onChanged);
    };
  }, [model]);
  return model;
}
