import './base.css';
import './filetree.css';
