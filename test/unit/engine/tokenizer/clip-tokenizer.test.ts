import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BOS_TOKEN,
  ClipTokenizer,
  EOS_TOKEN,
  parseMerges,
} from '../../../../electron/engine/tokenizer/clip-tokenizer.js';
import { isTokenizerFileError, type TokenizerFileError } from '../../../../electron/engine/tokenizer/tokenizer-file-error.js';

// The real CLIP vocabulary and the reference tokenizer's ids, kept in the repository (with their licence).
const clipDir = fileURLToPath(new URL('../../../fixtures/clip-tokenizer/', import.meta.url));

interface ReferenceCase {
  text: string;
  ids: number[];
  padded_sd1: number[];
  padded_sd2: number[];
}

const EOS_ID = 49407;
const BOS_ID = 49406;
const EXCLAMATION_ID = 0;

let workDir: string;
/** A copy of the real vocabulary with no config files: SD 1.x behaviour. */
let sd1: ClipTokenizer;
/** The same with special_tokens_map.json saying pad_token "!": SD 2.x behaviour. */
let sd2: ClipTokenizer;
let realVocab: Record<string, number>;
let realMergesText: string;
const references = JSON.parse(await readFile(join(clipDir, 'reference-cases.json'), 'utf8')) as ReferenceCase[];

/** A tokenizer folder holding the real vocab.json and merges.txt plus the given extra files. */
async function realFolder(name: string, files: Record<string, string> = {}): Promise<string> {
  const dir = join(workDir, name);
  await mkdir(dir, { recursive: true });
  await copyFile(join(clipDir, 'vocab.json'), join(dir, 'vocab.json'));
  await copyFile(join(clipDir, 'merges.txt'), join(dir, 'merges.txt'));
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

/** A folder with exactly the given files. */
async function folderWith(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(workDir, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

async function loadError(dir: string): Promise<TokenizerFileError> {
  try {
    await ClipTokenizer.fromFolder(dir);
  } catch (error) {
    assert.ok(isTokenizerFileError(error), `expected a TokenizerFileError, got ${String(error)}`);
    return error;
  }
  assert.fail(`loading ${dir} should have failed`);
}

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'clip-tokenizer-test-'));
  realVocab = JSON.parse(await readFile(join(clipDir, 'vocab.json'), 'utf8')) as Record<string, number>;
  realMergesText = await readFile(join(clipDir, 'merges.txt'), 'utf8');
  sd1 = await ClipTokenizer.fromFolder(clipDir);
  sd2 = await ClipTokenizer.fromFolder(
    await realFolder('sd2', { 'special_tokens_map.json': JSON.stringify({ pad_token: '!' }) }),
  );
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe('ClipTokenizer on reference-cases.json', () => {
  test('the file holds the 44 documented cases', () => {
    assert.equal(references.length, 44);
  });

  for (const [index, reference] of references.entries()) {
    const label = JSON.stringify(reference.text.length > 50 ? `${reference.text.slice(0, 50)}…` : reference.text);
    test(`case ${index}: ${label}`, () => {
      assert.deepEqual(sd1.tokenize(reference.text), reference.ids, 'tokenize');
      assert.deepEqual(sd1.encode(reference.text).ids, reference.padded_sd1, 'encode, pad <|endoftext|>');
      assert.deepEqual(sd2.encode(reference.text).ids, reference.padded_sd2, 'encode, pad "!"');
    });
  }
});

describe('ClipTokenizer special ids', () => {
  test('reads BOS, EOS and pad from the vocabulary and the config', () => {
    assert.equal(sd1.bosId, BOS_ID);
    assert.equal(sd1.eosId, EOS_ID);
    assert.equal(sd1.padId, EOS_ID);
    assert.equal(sd1.maxLength, 77);
    assert.equal(sd2.padId, EXCLAMATION_ID);
    assert.equal(sd2.padToken, '!');
  });
});

describe('ClipTokenizer.encode length and count', () => {
  test('an empty prompt is BOS, EOS and 75 pads', () => {
    const encoding = sd1.encode('');
    assert.deepEqual(encoding.ids, [BOS_ID, EOS_ID, ...new Array<number>(75).fill(EOS_ID)]);
    assert.equal(encoding.count, 0);
    assert.equal(encoding.truncated, false);
  });

  test('75 content tokens fit exactly; the 76th is cut', () => {
    const fits = sd1.encode('cat '.repeat(75));
    assert.equal(fits.count, 75);
    assert.equal(fits.truncated, false);
    assert.equal(fits.ids.length, 77);
    assert.equal(fits.ids[76], EOS_ID);

    const over = sd1.encode('cat '.repeat(76));
    assert.equal(over.count, 76);
    assert.equal(over.truncated, true);
    assert.deepEqual(over.ids, fits.ids);
  });

  test('a long prompt keeps its first 75 tokens and counts all of them', () => {
    const long = references.find((reference) => reference.ids.length > 75);
    assert.ok(long, 'reference-cases.json has a long prompt');
    const encoding = sd2.encode(long.text);
    assert.equal(encoding.count, long.ids.length);
    assert.equal(encoding.truncated, true);
    assert.deepEqual(encoding.ids, [BOS_ID, ...long.ids.slice(0, 75), EOS_ID]);
  });

  test('model_max_length from tokenizer_config.json sets the length', async () => {
    const dir = await realFolder('short', { 'tokenizer_config.json': JSON.stringify({ model_max_length: 8 }) });
    const tokenizer = await ClipTokenizer.fromFolder(dir);
    assert.equal(tokenizer.maxLength, 8);
    const text = 'a photograph of an astronaut riding a horse';
    const content = sd1.tokenize(text);
    const encoding = tokenizer.encode(text);
    assert.deepEqual(encoding.ids, [BOS_ID, ...content.slice(0, 6), EOS_ID]);
    assert.equal(encoding.count, 8);
    assert.equal(encoding.truncated, true);
  });
});

/**
 * Edge cases beyond reference-cases.json. Expected ids come from transformers 5.24 CLIPTokenizer
 * (tokenizers backend, no ftfy) on the same vocab.json/merges.txt, without and with pad_token "!".
 */
describe('ClipTokenizer matches HF on edge cases', () => {
  const cases: { why: string; text: string; ids: number[]; idsPadExclamation?: number[] }[] = [
    { why: 'Σ lowercases to σ even at the end of a word', text: 'ΣΑΣ', ids: [139, 225, 138, 109, 139, 481] },
    { why: 'a written ς stays ς', text: 'σας', ids: [139, 225, 138, 109, 139, 480] },
    { why: 'İ lowercases to i + combining dot', text: 'İstanbul', ids: [328, 16384, 11231] },
    { why: 'NFC composes e + U+0301', text: 'e\u0301 Å', ids: [4166, 127, 354] },
    { why: 'U+0085 is whitespace', text: 'a\u0085b', ids: [320, 321] },
    {
      why: 'NBSP, ideographic space, line separator are whitespace; U+FEFF is not',
      text: 'x\u00a0y\u3000z\u2028w\ufeffv',
      ids: [343, 344, 345, 342, 171, 119, 379, 341],
    },
    {
      why: 'control characters are kept as byte symbols; \\v and \\f are whitespace',
      text: 'a\u001cb\u001dc\u001ed\u001fe\u000bf\fg',
      ids: [320, 472, 321, 473, 322, 474, 323, 475, 324, 325, 326],
    },
    { why: 'CJK and kana are letters', text: '猫 の 写真abc', ids: [163, 234, 360, 4813, 362, 44653, 41570, 5334] },
    { why: 'contractions after lowercasing', text: "IT'S 'S 'll'LL", ids: [585, 568, 568, 1342, 1342] },
    {
      why: 'each digit is its own word, any script',
      text: '12345 ٣٤ ⅷ ²',
      ids: [272, 273, 274, 275, 276, 149, 352, 149, 353, 158, 227, 371, 41175],
    },
    { why: 'special tokens in the text map to their ids', text: 'a <|endoftext|> b', ids: [320, EOS_ID, 321] },
    { why: 'special tokens match anywhere', text: 'x<|startoftext|>y', ids: [343, BOS_ID, 344] },
    {
      why: 'special tokens match case-sensitively, before lowercasing',
      text: 'a <|ENDOFTEXT|> b',
      ids: [320, 27, 347, 40786, 4160, 91, 285, 321],
    },
    {
      why: '"!" is a token of its own only when it is the pad token (diffusers#4153)',
      text: '! !! !!!',
      ids: [256, 748, 995],
      idsPadExclamation: [0, 0, 0, 0, 0, 0],
    },
    { why: '"!" splits a punctuation run', text: '?!?', ids: [11395], idsPadExclamation: [286, 0, 286] },
    { why: '"!" splits before contractions', text: "don!'t", ids: [847, 13222, 339], idsPadExclamation: [847, 0, 713] },
    {
      why: '"!" next to a special token',
      text: 'a!<|endoftext|>!b',
      ids: [320, 256, EOS_ID, 256, 321],
      idsPadExclamation: [320, 0, EOS_ID, 0, 321],
    },
  ];
  for (const { why, text, ids, idsPadExclamation } of cases) {
    test(why, () => {
      assert.deepEqual(sd1.tokenize(text), ids);
      assert.deepEqual(sd2.tokenize(text), idsPadExclamation ?? ids);
    });
  }

  test('the "!" quirk pads and counts like diffusers', () => {
    const encoding = sd2.encode('! !! !!!');
    assert.deepEqual(encoding.ids, [BOS_ID, 0, 0, 0, 0, 0, 0, EOS_ID, ...new Array<number>(69).fill(0)]);
    assert.equal(encoding.count, 6);
    assert.equal(sd1.encode('! !! !!!').count, 3);
  });

  test('a word of thousands of characters', () => {
    // "ab" × 2000 is one word: 1999 × "ab" and a final "ab</w>".
    assert.deepEqual(sd1.tokenize('ab'.repeat(2000)), [...new Array<number>(1999).fill(596), 3937]);
    assert.deepEqual(sd1.tokenize('x'.repeat(300)), [...new Array<number>(74).fill(32035), 22819]);
  });
});

describe('ClipTokenizer word cache', () => {
  test('results stay the same when the cache evicts words', () => {
    const tiny = new ClipTokenizer({ vocab: realVocab, merges: realMergesText, wordCacheCapacity: 3 });
    const uncached = new ClipTokenizer({ vocab: realVocab, merges: realMergesText, wordCacheCapacity: 0 });
    for (let round = 0; round < 2; round++) {
      for (const reference of references) {
        assert.deepEqual(tiny.tokenize(reference.text), reference.ids);
        assert.deepEqual(uncached.tokenize(reference.text), reference.ids);
      }
    }
  });
});

describe('ClipTokenizer pad token config', () => {
  const padCases: { why: string; files: Record<string, string>; padId: number }[] = [
    { why: 'no config files: EOS', files: {}, padId: EOS_ID },
    { why: 'special_tokens_map.json string', files: { 'special_tokens_map.json': '{"pad_token": "!"}' }, padId: 0 },
    {
      why: 'special_tokens_map.json AddedToken dict',
      files: {
        'special_tokens_map.json': JSON.stringify({
          pad_token: { content: '!', lstrip: false, normalized: false, rstrip: false, single_word: false },
        }),
      },
      padId: 0,
    },
    { why: 'tokenizer_config.json string', files: { 'tokenizer_config.json': '{"pad_token": "!"}' }, padId: 0 },
    {
      why: 'tokenizer_config.json AddedToken dict',
      files: { 'tokenizer_config.json': JSON.stringify({ pad_token: { __type: 'AddedToken', content: '!' } }) },
      padId: 0,
    },
    {
      why: 'special_tokens_map.json wins over tokenizer_config.json (as in transformers)',
      files: {
        'special_tokens_map.json': '{"pad_token": "!"}',
        'tokenizer_config.json': '{"pad_token": "<|endoftext|>", "model_max_length": 77}',
      },
      padId: 0,
    },
    {
      why: 'tokenizer_config.json applies when special_tokens_map.json has no pad_token',
      files: {
        'special_tokens_map.json': '{"bos_token": "<|startoftext|>"}',
        'tokenizer_config.json': '{"pad_token": "!"}',
      },
      padId: 0,
    },
    { why: 'pad_token null: EOS', files: { 'tokenizer_config.json': '{"pad_token": null}' }, padId: EOS_ID },
  ];
  for (const [index, { why, files, padId }] of padCases.entries()) {
    test(why, async () => {
      const tokenizer = await ClipTokenizer.fromFolder(await realFolder(`pad-${index}`, files));
      assert.equal(tokenizer.padId, padId);
      assert.equal(tokenizer.encode('hello world').ids[76], padId);
      // The "!" quirk follows the pad token.
      assert.deepEqual(tokenizer.tokenize('hi!!'), padId === 0 ? [1883, 0, 0] : [1883, 748]);
    });
  }
});

describe('ClipTokenizer file errors', () => {
  test('a folder without vocab.json', async () => {
    const dir = await folderWith('no-vocab', { 'merges.txt': realMergesText });
    const error = await loadError(dir);
    assert.equal(error.name, 'TokenizerFileError');
    assert.equal(error.file, join(dir, 'vocab.json'));
    assert.match(error.message, /vocab\.json: file not found/);
  });

  test('a folder without merges.txt', async () => {
    const dir = await folderWith('no-merges', { 'vocab.json': JSON.stringify(realVocab) });
    const error = await loadError(dir);
    assert.match(error.message, /merges\.txt: file not found/);
  });

  test('a truncated vocab.json', async () => {
    const text = JSON.stringify(realVocab);
    const error = await loadError(
      await folderWith('cut-vocab', { 'vocab.json': text.slice(0, text.length / 2), 'merges.txt': realMergesText }),
    );
    assert.match(error.message, /vocab\.json: not valid JSON/);
  });

  test('a vocab.json that is not an object of ids', async () => {
    const notObject = await loadError(await folderWith('array-vocab', { 'vocab.json': '["a"]', 'merges.txt': 'a b' }));
    assert.match(notObject.message, /vocab\.json: must hold a JSON object/);
    const badId = await loadError(
      await folderWith('string-id', { 'vocab.json': '{"a": "1"}', 'merges.txt': 'a b' }),
    );
    assert.match(badId.message, /vocab\.json: token "a" has id "1"/);
  });

  test('a vocab.json without the special tokens', async () => {
    const { [BOS_TOKEN]: _bos, ...withoutBos } = realVocab;
    const error = await loadError(
      await folderWith('no-bos', { 'vocab.json': JSON.stringify(withoutBos), 'merges.txt': realMergesText }),
    );
    assert.match(error.message, /vocab\.json: the start-of-text token "<\|startoftext\|>" is not in the vocabulary/);
  });

  test('a malformed merges.txt line', async () => {
    const lines = realMergesText.split('\n');
    lines[3] = 'three parts here';
    const error = await loadError(
      await folderWith('bad-merge-line', { 'vocab.json': JSON.stringify(realVocab), 'merges.txt': lines.join('\n') }),
    );
    assert.match(error.message, /merges\.txt: line 4 is not a merge of two symbols separated by one space/);
  });

  test('an empty merges.txt', async () => {
    const error = await loadError(
      await folderWith('empty-merges', { 'vocab.json': JSON.stringify(realVocab), 'merges.txt': '#version: 0.2\n' }),
    );
    assert.match(error.message, /merges\.txt: holds no merges/);
  });

  test('a merges.txt from another vocabulary', async () => {
    const error = await loadError(
      await folderWith('foreign-merges', {
        'vocab.json': JSON.stringify(realVocab),
        'merges.txt': '#version: 0.2\nĠ t\nĠt he\n',
      }),
    );
    assert.match(error.message, /merges\.txt: merge 1 \("Ġ t"\) uses "Ġt", which is not in the vocabulary/);
  });

  test('a corrupt or unusable config file', async () => {
    const corrupt = await loadError(await realFolder('corrupt-map', { 'special_tokens_map.json': '{"pad_token": ' }));
    assert.match(corrupt.message, /special_tokens_map\.json: not valid JSON/);
    const badPad = await loadError(await realFolder('number-pad', { 'tokenizer_config.json': '{"pad_token": 0}' }));
    assert.match(badPad.message, /tokenizer_config\.json: pad_token must be a string or an object/);
    const unknownPad = await loadError(await realFolder('unknown-pad', { 'special_tokens_map.json': '{"pad_token": "<pad>"}' }));
    assert.match(unknownPad.message, /special_tokens_map\.json: pad_token "<pad>" is not in vocab\.json/);
    const sentinel = await loadError(
      await realFolder('huge-length', { 'tokenizer_config.json': '{"model_max_length": 1000000000000000019884624838656}' }),
    );
    assert.match(sentinel.message, /tokenizer_config\.json: model_max_length must be an integer from 2 to 4096/);
  });
});

/**
 * A small vocabulary made from the real files: the 512 byte symbols, the first 300 merges and the
 * two specials, numbered differently (specials first, then the rest in reverse order). Expected
 * tokens come from transformers' CLIPTokenizer on this same vocabulary.
 */
describe('ClipTokenizer with a small custom vocabulary', () => {
  const SMALL_MERGE_COUNT = 300;
  const BYTE_SYMBOL_COUNT = 512;
  let smallVocab: Record<string, number>;
  let smallMerges: [string, string][];
  let idToToken: Map<number, string>;

  before(() => {
    const realTokenById = new Map(Object.entries(realVocab).map(([token, id]) => [id, token]));
    smallMerges = parseMerges(realMergesText).slice(0, SMALL_MERGE_COUNT);
    const tokens: string[] = [];
    for (let id = 0; id < BYTE_SYMBOL_COUNT; id++) tokens.push(realTokenById.get(id) as string);
    for (const [left, right] of smallMerges) tokens.push(left + right);
    const ordered = [BOS_TOKEN, EOS_TOKEN, ...tokens.reverse()];
    smallVocab = Object.fromEntries(ordered.map((token, id) => [token, id]));
    idToToken = new Map(ordered.map((token, id) => [id, token]));
  });

  const expectations: { text: string; tokens: string[]; ids: number[]; idsPadExclamation?: number[] }[] = [
    {
      text: 'a photograph of an astronaut riding a horse',
      tokens: ['a</w>', 'p', 'ho', 'to', 'gra', 'p', 'h</w>', 'of</w>', 'an</w>', 'a', 'str', 'on', 'au', 't</w>', 'ri', 'ding</w>', 'a</w>', 'h', 'or', 'se</w>'],
      ids: [493, 734, 207, 233, 31, 734, 486, 274, 263, 749, 6, 292, 186, 474, 260, 17, 493, 742, 290, 202],
    },
    {
      text: 'The quick brown fox!!',
      tokens: ['the</w>', 'qu', 'ic', 'k</w>', 'b', 'ro', 'wn</w>', 'f', 'o', 'x</w>', '!!</w>'],
      ids: [295, 147, 278, 483, 748, 281, 56, 744, 735, 470, 65],
      idsPadExclamation: [295, 147, 278, 483, 748, 281, 56, 744, 735, 470, 813, 813],
    },
    {
      text: 'Über café 😀',
      tokens: ['Ã', '¼', 'b', 'er</w>', 'c', 'af', 'Ã', '©</w>', 'ðŁĺ', 'Ģ</w>'],
      ids: [686, 693, 748, 285, 747, 111, 686, 455, 145, 335],
    },
    {
      text: 'hello!world',
      tokens: ['h', 'el', 'l', 'o</w>', '!</w>', 'wor', 'ld</w>'],
      ids: [742, 269, 738, 479, 557, 172, 83],
      idsPadExclamation: [742, 269, 738, 479, 813, 172, 83],
    },
  ];

  test('in memory: ids and tokens as HF gives them, specials at their own ids', () => {
    const tokenizer = new ClipTokenizer({ vocab: smallVocab, merges: smallMerges });
    assert.equal(tokenizer.bosId, 0);
    assert.equal(tokenizer.eosId, 1);
    assert.equal(tokenizer.padId, 1);
    for (const { text, tokens, ids } of expectations) {
      const actual = tokenizer.tokenize(text);
      assert.deepEqual(actual, ids, text);
      assert.deepEqual(actual.map((id) => idToToken.get(id)), tokens, text);
    }
    const encoding = tokenizer.encode("don't stop");
    assert.deepEqual(encoding.ids, [0, 746, 288, 100, 291, 735, 478, 1, ...new Array<number>(69).fill(1)]);
  });

  test('from a folder, with pad "!" at its own id', async () => {
    const mergesText = `#version: 0.2\n${smallMerges.map(([left, right]) => `${left} ${right}`).join('\n')}\n`;
    const dir = await folderWith('small', {
      'vocab.json': JSON.stringify(smallVocab),
      'merges.txt': mergesText,
      'special_tokens_map.json': '{"pad_token": "!"}',
      'tokenizer_config.json': '{"model_max_length": 12}',
    });
    const tokenizer = await ClipTokenizer.fromFolder(dir);
    assert.equal(tokenizer.padId, smallVocab['!']);
    assert.equal(tokenizer.padId, 813);
    for (const { text, ids, idsPadExclamation } of expectations) {
      assert.deepEqual(tokenizer.tokenize(text), idsPadExclamation ?? ids, text);
    }
    assert.deepEqual(tokenizer.encode("don't stop").ids, [0, 746, 288, 100, 291, 735, 478, 1, 813, 813, 813, 813]);
    assert.deepEqual(tokenizer.encode('The quick brown fox!!'), {
      ids: [0, 295, 147, 278, 483, 748, 281, 56, 744, 735, 470, 1],
      count: 12,
      truncated: true,
    });
  });
});
