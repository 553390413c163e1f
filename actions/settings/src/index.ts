import { runAction } from '../../lib/action.js';
import { run } from './main.js';

runAction(run);
