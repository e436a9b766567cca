/**
 * A prompt box: the textarea, Ctrl+Up / Ctrl+Down weights (A1111's edit-attention), and completions of
 * the installed textual-inversion embeddings' names under it while a word is typed.
 * ↓/↑ move in the list, Enter or Tab chooses, Esc closes; a click chooses too.
 */
import { useId, useState, type KeyboardEvent } from 'react';
import { applyCompletion, matchCompletions, wordAtCaret, type CompletionWord } from './prompt-completions.js';
import { adjustPromptWeight, WEIGHT_STEP } from './prompt-weight.js';

interface Suggestions {
  text: string;
  word: CompletionWord;
  names: string[];
  active: number;
}

export interface PromptTextareaProps {
  id: string;
  label: string;
  describedBy: string;
  rows: number;
  placeholder: string;
  value: string;
  onChange: (text: string) => void;
  /** The embedding names to offer (sorted). */
  embeddings: readonly string[];
  /** Called when the box gets focus (the panel refreshes the names then). */
  onFocus?: () => void;
}

export function PromptTextarea(props: PromptTextareaProps) {
  const listId = useId();
  const [offered, setSuggestions] = useState<Suggestions | null>(null);
  const { value, embeddings } = props;
  // Offered for the text it was computed on: a change from outside (Reuse parameters) closes the list.
  const suggestions = offered && offered.text === value ? offered : null;

  const suggestAt = (text: string, start: number, end: number) => {
    const word = wordAtCaret(text, start, end);
    const names = word ? matchCompletions(word, text, embeddings) : [];
    setSuggestions(word && names.length > 0 ? { text, word, names, active: 0 } : null);
  };

  const choose = (el: HTMLTextAreaElement, s: Suggestions, name: string) => {
    const next = applyCompletion(el.value, s.word, name);
    props.onChange(next.text);
    setSuggestions(null);
    // After React has written the new value, put the caret after the name.
    requestAnimationFrame(() => el.setSelectionRange(next.caret, next.caret));
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    const el = e.currentTarget;
    const plain = !e.ctrlKey && !e.metaKey && !e.altKey && !e.shiftKey;
    if (suggestions && plain) {
      const n = suggestions.names.length;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        setSuggestions({ ...suggestions, active: (suggestions.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n });
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        choose(el, suggestions, suggestions.names[suggestions.active]!);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        setSuggestions(null);
        return;
      }
    }
    if (!(e.ctrlKey || e.metaKey) || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
    const edit = adjustPromptWeight(el.value, el.selectionStart, el.selectionEnd, e.key === 'ArrowUp' ? WEIGHT_STEP : -WEIGHT_STEP);
    e.preventDefault();
    setSuggestions(null);
    if (!edit) return;
    props.onChange(edit.text);
    // After React has written the new value, select the weighted text, so the next press steps again.
    requestAnimationFrame(() => el.setSelectionRange(edit.start, edit.end));
  };

  const optionId = (i: number) => `${listId}-${i}`;
  return (
    <div className="prompt-field">
      <textarea
        id={props.id}
        aria-label={props.label}
        aria-describedby={props.describedBy}
        aria-autocomplete="list"
        aria-expanded={suggestions !== null}
        aria-controls={suggestions ? listId : undefined}
        aria-activedescendant={suggestions ? optionId(suggestions.active) : undefined}
        rows={props.rows}
        placeholder={props.placeholder}
        value={value}
        onChange={(e) => {
          props.onChange(e.target.value);
          suggestAt(e.target.value, e.target.selectionStart, e.target.selectionEnd);
        }}
        onKeyDown={onKeyDown}
        onFocus={props.onFocus}
        onBlur={() => setSuggestions(null)}
        onClick={() => setSuggestions(null)}
      />
      {suggestions && (
        <ul className="completions" role="listbox" id={listId} aria-label={`Embeddings for ${props.label.toLowerCase()}`}>
          {suggestions.names.map((name, i) => (
            <li
              key={name}
              id={optionId(i)}
              role="option"
              aria-selected={i === suggestions.active}
              // mousedown, not click: the textarea keeps its focus and caret.
              onMouseDown={(e) => {
                e.preventDefault();
                const el = document.getElementById(props.id) as HTMLTextAreaElement | null;
                if (el) choose(el, suggestions, name);
              }}
            >
              {name}
              <span className="completion-kind">embedding</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
